"""Mininet topologies for sg-ofctl: hosts in security groups on Open vSwitch
bridges (userspace datapath) whose controller is the sg-ofctl agent.

Only Mininet is imported, so `mn` (Debian's python3) loads this file as it is:

    mn --custom mininet/sg_topos.py --topo sg-single \\
       --controller remote,ip=127.0.0.1,port=6653
    # then, in another shell: sg-ofctl agent --bridge s1 ...   (docs/MININET.md)

and so does the runner, `mininet/run.py`, which also starts the agents, the
security-group database and a private Open vSwitch (the way to use it).

Each host is a VM of examples/three-tier.yaml: its switch port is tagged the way a
hypervisor tags an instance NIC (Interface external_ids): iface-id = the port's
name, attached-mac, and - since these ports are not in the database - the
sg-ofctl-groups and sg-ofctl-ips tags, from which the agent creates the port.

Topologies (`--topo`):
    sg-single   one switch s1 (one hypervisor) with five hosts
    sg-two-hv   two switches s1, s2 (two hypervisors sharing one security-group
                database) joined by a link; each has its own agent: s1's on
                127.0.0.1:6653, s2's on 127.0.0.1:6654
"""
from mininet.node import Host, OVSSwitch
from mininet.topo import Topo

# name: (MAC, IPv4 address, security groups) - the VMs of examples/three-tier.yaml
SG_VMS = {
    "bastion": ("fa:16:3e:00:01:01", "10.0.1.10", ("ssh-bastion",)),
    "web1": ("fa:16:3e:00:02:01", "10.0.2.11", ("web",)),
    "web2": ("fa:16:3e:00:02:02", "10.0.2.12", ("web",)),
    "db1": ("fa:16:3e:00:03:01", "10.0.3.21", ("db",)),
    "monitor": ("fa:16:3e:00:04:01", "10.0.4.5", ()),        # no group: `default`
}
SG_PREFIX_LEN = 16          # every address on one link: 10.0.0.0/16
SG_OF_PORT = 6653           # the first agent's OpenFlow port; the next switch's is +1


class SgHost(Host):
    """A VM.  TX checksum offload off: the userspace datapath's conntrack sees
    every TCP segment as invalid otherwise."""

    def config(self, **params):
        result = super().config(**params)
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd("ethtool -K %s tx off >/dev/null 2>&1" % intf)
        return result


class SgSwitch(OVSSwitch):
    """One hypervisor's integration bridge: userspace datapath, fail_mode=secure,
    OpenFlow 1.3+, and the hypervisor's tags on every port whose peer is a host
    (hosts' params: `port` = iface-id, default NAME-eth0; `groups`; `tag_ips`).
    `agent_port`: connect to the agent on 127.0.0.1:agent_port, whatever
    controllers Mininet was given (one agent per hypervisor)."""

    def __init__(self, name, agent_port=None, **params):
        params.setdefault("datapath", "user")
        params.setdefault("failMode", "secure")
        params.setdefault("protocols", "OpenFlow13,OpenFlow14,OpenFlow15")
        self.agent_port = agent_port
        OVSSwitch.__init__(self, name, **params)

    def start(self, controllers):
        OVSSwitch.start(self, [] if self.agent_port else controllers)
        if self.agent_port:
            self.vsctl("-- set-controller", self, "tcp:127.0.0.1:%d" % self.agent_port)
        for intf, host in self.host_ports():
            self.vsctl("-- set Interface", intf, *tags_of(host))

    def host_ports(self):
        """(switch interface, host) for each link to a host."""
        for intf in self.intfList():
            link = getattr(intf, "link", None)
            if not link:
                continue
            peer = link.intf2 if link.intf1 is intf else link.intf1
            if isinstance(peer.node, Host):
                yield intf, peer.node


def tags_of(host):
    """external_ids of the host's switch port, as ovs-vsctl arguments."""
    p = host.params
    ips = p.get("tag_ips") or [host.IP()]
    tags = {"iface-id": p.get("port") or "%s-eth0" % host.name,
            "attached-mac": host.MAC(), "sg-ofctl-ips": ",".join(ips)}
    if p.get("groups"):
        tags["sg-ofctl-groups"] = ",".join(p["groups"])
    # Through a shell: the single quotes keep the double quotes that OVSDB needs
    # around a value with commas.
    return ["'external_ids:%s=\"%s\"'" % kv for kv in sorted(tags.items())]


def add_vm(topo, name):
    mac, ip, groups = SG_VMS[name]
    return topo.addHost(name, cls=SgHost, mac=mac, ip="%s/%d" % (ip, SG_PREFIX_LEN),
                        groups=groups, port="%s-eth0" % name)


class SgSingle(Topo):
    """One hypervisor: s1 and the five VMs."""

    def build(self, hosts=tuple(SG_VMS)):
        s1 = self.addSwitch("s1", cls=SgSwitch, agent_port=SG_OF_PORT)
        for name in hosts:
            self.addLink(add_vm(self, name), s1)


class SgTwoHypervisors(Topo):
    """Two hypervisors sharing one security-group database: s1 (bastion, web1,
    monitor) and s2 (web2, db1), their bridges joined by a link (an uplink:
    its interfaces have no iface-id)."""

    PLACEMENT = {"s1": ("bastion", "web1", "monitor"), "s2": ("web2", "db1")}

    def build(self):
        switches = []
        for i, (sw, names) in enumerate(sorted(self.PLACEMENT.items())):
            switch = self.addSwitch(sw, cls=SgSwitch, agent_port=SG_OF_PORT + i)
            switches.append(switch)
            for name in names:
                self.addLink(add_vm(self, name), switch)
        self.addLink(switches[0], switches[1])


topos = {"sg-single": SgSingle, "sg-two-hv": SgTwoHypervisors}
# `mn --custom mininet/sg_topos.py --switch sgovs --host sghost ...` for your own topologies.
switches = {"sgovs": SgSwitch}
hosts = {"sghost": SgHost}
