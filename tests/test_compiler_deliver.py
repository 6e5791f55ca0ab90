"""`deliver`: layer-2 delivery to known ports only (what replaced OVS NORMAL,
so that a port no agent has enforced gets nothing even while no agent runs).
Run in the simulator with `deliver` executed: which ports get the packet."""
from helpers import MAC, UPLINK, group, rule, tcp, view, vm
from ofsim import deliveries
from sg_ofctl.compiler import compile_host
from sg_ofctl.model import Port
from sg_ofctl.reference import Packet

OTHER_UPLINK = 101
UNKNOWN = 7   # a port on the bridge that no agent enforces (not in the view)


def _flows():
    ports = [vm(1), vm(2), Port(id="p3", mac=MAC(3), fixed_ips=("10.0.0.3",), ofport=3,
                                port_security_enabled=False),
             Port(id="p5", mac=MAC(5), fixed_ips=("10.0.5.5",), ofport=5, network=5,
                  security_groups=("web",)),
             Port(id="p6", mac=MAC(6), fixed_ips=("10.0.5.6",), ofport=6, network=5)]
    return compile_host(view(ports, [group("web", rule("any"))],
                             uplinks=(UPLINK, OTHER_UPLINK)))


FLOWS = _flows()


def _arp(src: int, **kw) -> Packet:
    base = dict(in_port=src, eth_src=MAC(src), eth_dst="ff:ff:ff:ff:ff:ff", eth_type="arp",
                arp_spa=f"10.0.0.{src}", arp_sha=MAC(src))
    return Packet(**{**base, **kw})


def test_a_broadcast_reaches_the_networks_known_ports_and_uplinks_only():
    assert deliveries(FLOWS, _arp(1)) == {2: None, 3: None, UPLINK: None, OTHER_UPLINK: None}
    # Network 5: its local ports untagged, the uplinks tagged with 5.
    got = deliveries(FLOWS, _arp(5, arp_spa="10.0.5.5"))
    assert got == {6: None, UPLINK: 5, OTHER_UPLINK: 5}
    # From an uplink, tagged 5: the other uplink keeps the tag, local ports get it popped.
    tagged = _arp(UPLINK, eth_src="fa:16:3e:99:00:01", arp_sha="fa:16:3e:99:00:01",
                  arp_spa="10.0.5.9", vlan=5)
    assert deliveries(FLOWS, tagged) == {5: None, 6: None, OTHER_UPLINK: 5}
    assert all(UNKNOWN not in deliveries(FLOWS, p) for p in (_arp(1), _arp(5), tagged))


def test_unknown_unicast_goes_to_the_uplinks_never_to_a_local_port():
    to_unknown = Packet(in_port=1, eth_src=MAC(1), eth_dst=MAC(UNKNOWN), src_ip="10.0.0.1",
                        dst_ip="10.0.0.7", proto=17, sport=1000, dport=53)
    assert deliveries(FLOWS, to_unknown) == {UPLINK: None, OTHER_UPLINK: None}
    from_uplink = Packet(in_port=UPLINK, eth_src="fa:16:3e:99:00:01", eth_dst=MAC(UNKNOWN),
                         src_ip="10.0.0.9", dst_ip="10.0.0.7", proto=17, sport=1, dport=53)
    assert deliveries(FLOWS, from_uplink) == {OTHER_UPLINK: None}


def test_known_ports_get_their_unicast():
    assert deliveries(FLOWS, tcp(1, 2, 80)) == {2: None}       # filtered: via ingress
    assert deliveries(FLOWS, tcp(1, 3, 80)) == {3: None}       # port security off
    tagged = Packet(in_port=UPLINK, eth_src="fa:16:3e:99:00:01", eth_dst=MAC(5),
                    src_ip="10.0.5.9", dst_ip="10.0.5.5", proto=6, sport=1, dport=80, vlan=5)
    assert deliveries(FLOWS, tagged) == {5: None}


def test_no_flow_outputs_normal_or_to_an_undeclared_port():
    known = {1, 2, 3, 5, 6, UPLINK, OTHER_UPLINK}
    for flow in FLOWS:
        for action in flow.actions:
            assert type(action).__name__ != "Normal", flow
            port = getattr(action, "port", None)
            assert port is None or port in known, flow
