"""The driver against the OVS agent's real integration bridge, step by step.

Run with .venv-neutron's python inside the namespace of a private Open vSwitch
(tests/neutron/run_in_private_ovs.sh; tests/test_neutron_contract.py does it).
It starts os-ken the way the agent embeds it (the ofctl service and Neutron's
own os-ken app class), builds `OVSIntegrationBridge` bound to that app, loads
the driver by its entry point name, and replays the agent's call sequences
with real VMs (network namespaces on veth pairs) and real pings.  Every step
prints "STEP <name> ok" or raises; the last line is "CONTRACT OK"."""
import json
import os
import subprocess
import sys
import time
import uuid

os.environ.setdefault("OSKEN_HUB_TYPE", "native")

TAG = uuid.uuid4().hex[:6]
BRIDGE = f"bri{TAG}"
VLAN = 7
SG, RG = "sg-web", "sg-remote"


def sh(*cmd, check=True):
    return subprocess.run([str(c) for c in cmd], check=check, capture_output=True, text=True)


def step(name, **facts):
    print(f"STEP {name} ok {json.dumps(facts, sort_keys=True)}", flush=True)


class Vm:
    def __init__(self, index):
        self.ns = f"ct{TAG}v{index}"
        self.host_if, self.vm_if = f"v{TAG}h{index}", f"v{TAG}g{index}"
        self.id = str(uuid.uuid4())
        self.mac = f"fa:16:3e:00:{index:02x}:01"
        self.ip = f"10.77.0.{index}"

    def create(self):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.vm_if)
        sh("ip", "link", "set", self.vm_if, "netns", self.ns)
        for cmd in (("ip", "link", "set", self.vm_if, "address", self.mac),
                    ("ip", "addr", "add", f"{self.ip}/24", "dev", self.vm_if),
                    ("ip", "link", "set", self.vm_if, "up"), ("ip", "link", "set", "lo", "up"),
                    ("ethtool", "-K", self.vm_if, "tx", "off")):
            sh("ip", "netns", "exec", self.ns, *cmd)
        sh("ip", "link", "set", self.host_if, "up")

    def plug(self):
        sh("ovs-vsctl", "--", "add-port", BRIDGE, self.host_if, "tag=%d" % VLAN,
           f"other_config:tag={VLAN}", "--", "set", "Interface", self.host_if,
           f"external_ids:iface-id={self.id}", f"external_ids:attached-mac={self.mac}",
           "external_ids:iface-status=active")

    def dict(self, groups=(SG,), security=True):
        return {"id": self.id, "device": self.id, "mac_address": self.mac,
                "fixed_ips": [self.ip], "allowed_address_pairs": [],
                "port_security_enabled": security, "security_groups": list(groups),
                "device_owner": "compute:nova", "network_id": "net-1",
                "admin_state_up": True, "status": "ACTIVE"}

    def pings(self, other, count=2) -> bool:
        r = sh("ip", "netns", "exec", self.ns, "ping", "-c", count, "-i", "0.2", "-W", "1",
               other.ip, check=False)
        return r.returncode == 0

    def destroy(self):
        sh("ip", "netns", "delete", self.ns, check=False)
        sh("ip", "link", "delete", self.host_if, check=False)


def start_os_ken():
    from os_ken.base import app_manager
    from oslo_config import cfg
    import os_ken.controller.controller  # noqa: F401  (the ofp_* options)
    from neutron.conf.agent import ovs_conf as agent_ovs_conf
    from neutron.conf.agent import ovsdb_api, securitygroups_rpc
    from neutron.conf.plugins.ml2.drivers import ovs_conf
    securitygroups_rpc.register_securitygroups_opts()
    ovsdb_api.register_ovsdb_api_opts()
    ovs_conf.register_ovs_agent_opts()
    agent_ovs_conf.register_ovs_agent_opts()
    cfg.CONF([], project="neutron")
    port = free_port()
    cfg.CONF.set_override("of_listen_port", port, "OVS")
    cfg.CONF.set_override("of_listen_address", "127.0.0.1", "OVS")
    from os_ken import cfg as os_ken_cfg  # os-ken's own ConfigOpts, as the agent sets it
    os_ken_cfg.CONF(args=[], project="os_ken")
    os_ken_cfg.CONF.set_override("ofp_listen_host", "127.0.0.1")
    os_ken_cfg.CONF.set_override("ofp_tcp_listen_port", port)
    mgr = app_manager.AppManager.get_instance()
    mgr.load_apps(["os_ken.app.ofctl.service",
                   "neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native."
                   "base_oskenapp"])
    mgr.instantiate_apps(**mgr.create_contexts())
    return mgr.applications["BaseNeutronAgentOSKenApp"], cfg.CONF


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def integration_bridge(app, conf):
    """What the agent's setup_integration_br() does, with the agent's class."""
    from neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native import br_int
    br = br_int.OVSIntegrationBridge(BRIDGE, os_ken_app=app, datapath_type="netdev")
    br.create()
    br.set_secure_mode()
    br.setup_controllers(conf)
    br.setup_default_table()
    return br


def our_flows(br):
    """sg-ofctl's flows on br-int (cookie signature 0x5, not the agent's), as text."""
    out = sh("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", BRIDGE).stdout
    return sorted(line.strip() for line in out.splitlines()
                  if line.strip().startswith("cookie=0x5") and
                  int(line.split("cookie=")[1].split(",")[0].split()[0], 16) not in
                  (br.reserved_cookies - {c for c in br.reserved_cookies if c >> 60 == 5}
                   | {br._default_cookie}))


def cookies_in_agent_tables(br):
    from neutron_lib.plugins.ml2 import ovs_constants
    out = sh("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", BRIDGE).stdout
    found = set()
    for line in out.splitlines()[1:]:
        table = int(line.split("table=")[1].split(",")[0])
        if table in ovs_constants.INT_BR_ALL_TABLES:
            found.add(int(line.split("cookie=")[1].split(",")[0], 16))
    return found


def apply(fw, *calls):
    with fw.defer_apply():
        for name, *args in calls:
            getattr(fw, name)(*args)


def main():
    from neutron.agent import firewall
    from neutron_lib.callbacks import events, registry, resources
    app, conf = start_os_ken()
    vms = [Vm(1), Vm(2)]
    try:
        br = integration_bridge(app, conf)
        for vm in vms:
            vm.create()
            vm.plug()
        a, b = vms
        driver_class = firewall.load_firewall_driver_class("sg_ofctl")
        fw = driver_class(integration_bridge=br)
        assert fw.channel.__class__.__name__ == "AgentOpenFlowChannel", fw.channel
        rules = [{"direction": "egress", "ethertype": "IPv4", "stateful": True},
                 {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
                  "stateful": True}]
        members = {"IPv4": [(a.ip, a.mac), (b.ip, b.mac)]}

        # New ports: one batch, one bundle.
        apply(fw, ("update_security_group_rules", SG, rules),
              ("update_security_group_members", SG, members),
              ("prepare_port_filter", a.dict()), ("prepare_port_filter", b.dict()))
        assert fw.bundles_sent == 1, fw.bundles_sent
        assert a.pings(b) and b.pings(a), "ICMP allowed by the rules does not pass"
        assert set(fw.ports) == {a.id, b.id}
        step("new ports", flows=len(our_flows(br)), bundles=fw.bundles_sent)

        # Neutron re-sends everything on refresh: nothing changes, nothing is sent.
        apply(fw, ("update_security_group_rules", SG, rules),
              ("update_security_group_members", SG, members),
              ("update_port_filter", a.dict()), ("update_port_filter", b.dict()))
        assert fw.last_flow_mods == 0 and fw.bundles_sent == 1, fw.last_flow_mods
        step("unchanged ports re-sent", flow_mods=fw.last_flow_mods)

        # Rule change: ICMP removed, then back.
        apply(fw, ("update_security_group_rules", SG, rules[:1]),
              ("update_port_filter", a.dict()), ("update_port_filter", b.dict()))
        assert not a.pings(b, 1), "ICMP passes without a rule"
        removed = fw.last_flow_mods
        apply(fw, ("update_security_group_rules", SG, rules),
              ("update_port_filter", a.dict()), ("update_port_filter", b.dict()))
        assert a.pings(b)
        step("rule change", flow_mods=[removed, fw.last_flow_mods])

        # Member change: b allows ICMP only from the members of RG.
        rg_rules = [rules[0], {"direction": "ingress", "ethertype": "IPv4",
                               "protocol": "icmp", "remote_group_id": RG}]
        apply(fw, ("update_security_group_rules", RG, rg_rules),
              ("update_security_group_members", RG, {"IPv4": []}),
              ("update_port_filter", b.dict(groups=(RG,))))
        assert not a.pings(b, 1), "ICMP passes from a non-member"
        apply(fw, ("update_security_group_members", RG, {"IPv4": [(a.ip, a.mac)]}),
              ("update_port_filter", b.dict(groups=(RG,))))
        assert a.pings(b), "ICMP from a member does not pass"
        assert fw.last_flow_mods <= 2, fw.last_flow_mods
        step("member change", flow_mods=fw.last_flow_mods)

        # Port security off, then on again (both arrive as update_port_filter).
        apply(fw, ("update_security_group_members", RG, {"IPv4": []}),
              ("update_port_filter", b.dict(groups=(RG,))))
        assert not a.pings(b, 1)
        apply(fw, ("update_port_filter", b.dict(groups=(), security=False)))
        assert a.pings(b), "a port without port security is still filtered"
        assert b.id not in fw.ports
        apply(fw, ("update_port_filter", b.dict(groups=(RG,))))
        assert not a.pings(b, 1), "port security on again does not filter"
        step("port security off and on")

        # The agent's stale-flow clean-up removes none of our flows.
        before = our_flows(br)
        ours = {c for c in cookies_in_agent_tables(br) if c >> 60 == 0x5}
        assert ours <= br.reserved_cookies, ours - br.reserved_cookies
        br.cleanup_flows()
        assert our_flows(br) == before, "cleanup_flows() removed sg-ofctl flows"
        assert a.pings(b, 1) is False and b.pings(a), "traffic changed by the clean-up"
        step("cleanup_stale_flows", flows=len(before))

        # ovs-vswitchd restart: every flow is gone; the agent re-initialises br-int
        # and publishes OVS_RESTARTED; the driver reinstalls everything.
        restart_vswitchd()
        wait_for(lambda: "true" in sh("ovs-vsctl", "--columns=is_connected", "list",
                                      "Controller").stdout)
        br.setup_controllers(conf)
        br.setup_default_table()
        registry.publish(resources.AGENT, events.OVS_RESTARTED, None)
        after = our_flows(br)
        assert after == before, ("flows differ after the OVS restart",
                                 sorted(set(before) ^ set(after))[:6])
        assert b.pings(a) and not a.pings(b, 1)
        step("OVS restart", flows=len(our_flows(br)))

        # Agent restart: a new bridge object (new default cookie) and a new driver
        # fed the same state send no flow mod, and the clean-up keeps our flows.
        br2 = integration_bridge(app, conf)
        fw2 = driver_class(integration_bridge=br2)
        apply(fw2, ("update_security_group_rules", SG, rules),
              ("update_security_group_rules", RG, rg_rules),
              ("update_security_group_members", SG, members),
              ("update_security_group_members", RG, {"IPv4": []}),
              ("prepare_port_filter", a.dict()), ("prepare_port_filter", b.dict(groups=(RG,))))
        assert fw2.last_flow_mods == 0, f"agent restart sent {fw2.last_flow_mods} flow mods"
        br2.cleanup_flows()
        assert our_flows(br2) == before
        assert b.pings(a) and not a.pings(b, 1)
        step("agent restart", flow_mods=fw2.last_flow_mods)

        # Port removed from br-int: its flows go.
        apply(fw2, ("remove_port_filter", b.dict(groups=(RG,))))
        left = our_flows(br2)
        assert not any(f"in_port={ofport(b)}" in f for f in left), left
        assert b.id not in fw2.ports
        step("port removal", flows=len(left))
    finally:
        for vm in vms:
            vm.destroy()
        sh("ovs-vsctl", "--if-exists", "del-br", BRIDGE, check=False)
    print("CONTRACT OK", flush=True)


def ofport(vm):
    return int(sh("ovs-vsctl", "get", "Interface", vm.host_if, "ofport").stdout)


def restart_vswitchd():
    rundir = os.environ["OVS_RUNDIR"]
    pid = int(open(f"{rundir}/ovs-vswitchd.pid").read())
    sh("ovs-appctl", "-t", f"{rundir}/ovs-vswitchd.ctl", "exit")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    sh("ovs-vswitchd", f"unix:{rundir}/db.sock", f"--pidfile={rundir}/ovs-vswitchd.pid",
       f"--unixctl={rundir}/ovs-vswitchd.ctl", "--detach",
       f"--log-file={rundir}/ovs-vswitchd.log", "--no-chdir")
    wait_for(lambda: sh("ovs-ofctl", "-O", "OpenFlow13", "show", BRIDGE,
                        check=False).returncode == 0)


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.2)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)
    os._exit(0)
