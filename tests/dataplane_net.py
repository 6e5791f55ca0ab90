"""The functional tests' network: four namespace "VMs" on a private
ovs-vswitchd, their security groups, compiled and installed by the os-ken driver.
Test modules import the module-scoped `net` fixture (one network per module).

    a (10.0.0.1, fd00::a), b (10.0.0.2, fd00::b): `default`; a also in `to-a`
                        (ingress icmp and udp/53 from 10.0.0.0/24)
    c (10.0.0.3, fd00::c): `ssh-in` (ingress tcp/22 only) + `out` (egress IPv4 anywhere)
    d (10.0.0.4, fd00::d): `stateless` (no conntrack: ingress tcp/22, egress IPv4 any)
"""

import pytest

from ovs_testbed import OvsTestbed
from sg_ofctl.compiler import Compiler
from sg_ofctl.model import HostView, Port, Rule, SecurityGroup, default_group

MACS = {"a": "fa:16:3e:00:00:0a", "b": "fa:16:3e:00:00:0b", "c": "fa:16:3e:00:00:0c",
        "d": "fa:16:3e:00:00:0d"}
IPS = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}
IP6S = {"a": "fd00::a", "b": "fd00::b", "c": "fd00::c", "d": "fd00::d"}
SERVICES = {"a": [("udp", 53)], "b": [("udp", 53), ("tcp", 80)], "c": [("tcp", 22), ("tcp", 80)],
            "d": [("tcp", 22), ("tcp", 80)]}   # what each VM's echo servers listen on
GROUPS = {"a": ("default", "to-a"), "b": ("default",), "c": ("ssh-in", "out"),
          "d": ("stateless",)}
SSH_IN = SecurityGroup("ssh-in", rules=(Rule("ssh", direction="ingress", protocol="tcp",
                                             port_range_min=22, port_range_max=22),))
HTTP_RULE = Rule("http", security_group_id="ssh-in", direction="ingress", protocol="tcp",
                 port_range_min=80, port_range_max=80)


def host_view(ofports: dict, ssh_in: SecurityGroup = SSH_IN) -> HostView:
    groups = [default_group(), ssh_in,
              SecurityGroup("to-a", rules=(
                  Rule("icmp", direction="ingress", protocol="icmp",
                       remote_ip_prefix="10.0.0.0/24"),
                  Rule("dns", direction="ingress", protocol="udp", port_range_min=53,
                       port_range_max=53, remote_ip_prefix="10.0.0.0/24"))),
              SecurityGroup("out", rules=(Rule("any-out", direction="egress"),)),
              SecurityGroup("stateless", stateful=False, rules=(
                  Rule("ssh", direction="ingress", protocol="tcp", port_range_min=22,
                       port_range_max=22),
                  Rule("any-out", direction="egress")))]
    ports = tuple(Port(id=f"port-{n}", mac=MACS[n], fixed_ips=(IPS[n], IP6S[n]),
                       ofport=ofports[n], security_groups=GROUPS[n]) for n in sorted(MACS))
    return HostView(ports=ports, groups={g.id: g for g in groups},
                    members={"default": frozenset({IPS["a"], IPS["b"], IP6S["a"], IP6S["b"]})})


@pytest.fixture(scope="module")
def net():
    with OvsTestbed() as testbed:
        vms = {n: testbed.add_vm(n, MACS[n], [IPS[n], IP6S[n]]) for n in sorted(MACS)}
        compiler = Compiler()
        view = host_view({n: vm.ofport for n, vm in vms.items()})
        controller = testbed.start_controller()
        controller.install_full(compiler.update(view).add)
        for name, services in SERVICES.items():
            for proto, port in services:
                vms[name].serve(proto, port)
        testbed.compiler, testbed.view = compiler, view
        yield testbed
