"""Hand-written scenarios, one per feature: compiled flows and reference agree
(helpers.Both checks that on every packet) and give the expected verdict."""
from helpers import MAC, UPLINK, Both, group, icmp, rule, tcp, view, vm
from sg_ofctl.model import AddressPair, Port
from sg_ofctl.reference import Packet

SSH = dict(protocol="tcp", port_range_min=22, port_range_max=22)
EGRESS_ALL = rule("eg", "egress")


def test_default_group_members_reach_each_other_others_cannot():
    b = Both(view([vm(1), vm(2), vm(3, "other")], [group("other", EGRESS_ALL)]))
    assert b.action(icmp(1, 2)) == "output:2"
    # committed in the receiver's zone, then in the sender's (zones are per port)
    assert b(icmp(1, 2)).commits == ("commit-ingress", "commit-egress")
    assert b.action(tcp(2, 1, 5000)) == "output:1"
    assert b.action(icmp(3, 1)) == "drop"          # not a member of default
    assert b.action(icmp(1, 3)) == "drop"          # `other` has no ingress rule
    assert b(icmp(1, 3)).commits == ()            # ...and left no conntrack entry


def test_egress_open_to_the_outside_goes_to_normal():
    b = Both(view([vm(1)], []))
    out = b(Packet(in_port=1, eth_src=MAC(1), eth_dst="fa:16:3e:99:99:99",
                   src_ip="10.0.0.1", dst_ip="8.8.8.8", proto=17, sport=5000, dport=53))
    assert (out.action, out.commits) == ("normal", ("commit-egress",))


def test_port_range_and_protocols():
    g = group("web", rule("r1", protocol="tcp", port_range_min=8000, port_range_max=8080),
              rule("r2", protocol="udp", port_range_min=53, port_range_max=53),
              rule("r3", protocol="icmp", port_range_min=8, port_range_max=0), EGRESS_ALL)
    b = Both(view([vm(1, "web"), vm(2)], [g]))
    for port, expected in ((7999, "drop"), (8000, "output:1"), (8063, "output:1"),
                           (8064, "output:1"), (8080, "output:1"), (8081, "drop")):
        assert b.action(tcp(2, 1, port)) == expected, port
    udp = Packet(in_port=2, eth_src=MAC(2), eth_dst=MAC(1), src_ip="10.0.0.2",
                 dst_ip="10.0.0.1", proto=17, sport=999, dport=53)
    assert b.action(udp) == "output:1"
    assert b.action(icmp(2, 1, 8, 0)) == "output:1"
    assert b.action(icmp(2, 1, 8, 1)) == "drop"      # wrong code
    assert b.action(icmp(2, 1, 0, 0)) == "drop"      # echo reply is not a request


def test_remote_prefix_and_remote_group():
    g = group("db", rule("p", **SSH, remote_ip_prefix="10.0.0.2/32"),
              rule("g", protocol="tcp", port_range_min=5432, port_range_max=5432,
                   remote_group_id="web"), EGRESS_ALL)
    web = group("web", EGRESS_ALL)
    b = Both(view([vm(1, "db"), vm(2, "web"), vm(3, "web"), vm(4)], [g, web]))
    assert b.action(tcp(2, 1, 22)) == "output:1"
    assert b.action(tcp(3, 1, 22)) == "drop"
    assert b.action(tcp(3, 1, 5432)) == "output:1"
    assert b.action(tcp(4, 1, 5432)) == "drop"


def test_ipv6_rules():
    g = group("v6", rule("r", ethertype="IPv6", **SSH, remote_ip_prefix="fd00::/64"),
              rule("i", ethertype="IPv6", protocol="icmp", port_range_min=128), EGRESS_ALL,
              rule("eg6", "egress", ethertype="IPv6"))
    ports = [vm(1, "v6", ips=("fd00::1",)), vm(2, ips=("fd00::2",)),
             vm(3, ips=("fd01::3",))]
    b = Both(view(ports, [g]))
    def v6(src, dst, **kw):
        return Packet(in_port=src, eth_src=MAC(src), eth_dst=MAC(dst), eth_type="ipv6",
                      src_ip=ports[src - 1].fixed_ips[0], dst_ip=ports[dst - 1].fixed_ips[0],
                      **kw)
    assert b.action(v6(2, 1, proto=6, sport=4000, dport=22)) == "output:1"
    assert b.action(v6(3, 1, proto=6, sport=4000, dport=22)) == "drop"
    assert b.action(v6(3, 1, proto=58, icmp_type=128, icmp_code=0)) == "output:1"
    assert b.action(v6(3, 1, proto=6, sport=4000, dport=22), "rpl") == "output:1"


def test_deny_beats_allow_across_groups():
    allow = group("allow", rule("a", protocol="tcp"), EGRESS_ALL)
    deny = group("deny", rule("d", **SSH, action="deny", remote_group_id="bad"))
    bad = group("bad", EGRESS_ALL)
    b = Both(view([vm(1, "allow", "deny"), vm(2, "bad"), vm(3)], [allow, deny, bad]))
    assert b.action(tcp(3, 1, 22)) == "output:1"
    assert b.action(tcp(3, 1, 80)) == "output:1"
    assert b.action(tcp(2, 1, 80)) == "output:1"
    assert b.action(tcp(2, 1, 22)) == "drop"
    # An established connection that is now denied is marked revoked.
    assert b(tcp(2, 1, 22), "est").commits == ("revoke-ingress",)


def test_stateless_group_needs_rules_both_ways():
    sl = group("sl", rule("in", **SSH), stateful=False)
    b = Both(view([vm(1, "sl"), vm(2)], [sl]))
    # vm2 stateful egress commits in its zone, after vm1's stateless verdict
    assert b(tcp(2, 1, 22)).commits == ("commit-egress",)
    assert b.action(tcp(2, 1, 22)) == "output:1"
    reply = tcp(1, 2, 40000, sport=22)
    assert b.action(reply, "rpl") == "drop"           # no egress rule on the stateless port
    assert b.action(tcp(2, 1, 22), "inv") == "drop"   # vm2 is stateful: +inv dropped


def test_multiple_groups_on_one_port_union():
    a = group("a", rule("ssh", **SSH))
    w = group("w", rule("http", protocol="tcp", port_range_min=80, port_range_max=80),
              EGRESS_ALL)
    b = Both(view([vm(1, "a", "w"), vm(2)], [a, w]))
    assert b.action(tcp(2, 1, 22)) == b.action(tcp(2, 1, 80)) == "output:1"
    assert b.action(tcp(2, 1, 443)) == "drop"


def test_port_security_off_means_no_filtering():
    open_port = Port(id="p1", mac=MAC(1), fixed_ips=("10.0.0.1",), ofport=1,
                     port_security_enabled=False)
    b = Both(view([open_port, vm(2)], []))
    forged = Packet(in_port=1, eth_src="fa:16:3e:66:66:66", eth_dst="fa:16:3e:99:00:00",
                    src_ip="10.9.9.9", dst_ip="10.0.0.77", proto=6, sport=1, dport=2)
    assert b.action(forged) == "normal"
    assert b.action(tcp(2, 1, 80)) == "normal"   # to an unfiltered port: NORMAL
    assert b.action(tcp(1, 2, 80)) == "drop"     # but vm2's ingress rules still apply


def test_stateful_replies_and_states():
    b = Both(view([vm(1, "eg"), vm(2, "eg")], [group("eg", EGRESS_ALL)]))
    assert b.action(tcp(2, 1, 80)) == "drop"
    assert b.action(tcp(2, 1, 80), "rpl") == "output:1"
    assert b.action(tcp(2, 1, 80), "rel") == "output:1"
    assert b.action(tcp(2, 1, 80), "rpl", mark=1) == "drop"
    assert b.action(tcp(2, 1, 80), "rpl", mark=2) == "drop"
    assert b.action(tcp(2, 1, 80), "inv") == "drop"


def test_spoofing_is_dropped():
    pairs = (AddressPair("10.0.5.0/24"), AddressPair("10.0.6.6", "fa:16:3e:55:55:55"))
    b = Both(view([vm(1, allowed_address_pairs=pairs), vm(2)], []))
    base = dict(in_port=1, eth_dst=MAC(2), dst_ip="10.0.0.2", proto=1, icmp_type=8, icmp_code=0)
    assert b.action(Packet(eth_src=MAC(1), src_ip="10.0.0.1", **base)) == "output:2"
    assert b.action(Packet(eth_src=MAC(1), src_ip="10.0.0.99", **base)) == "drop"
    assert b.action(Packet(eth_src="fa:16:3e:12:34:56", src_ip="10.0.0.1", **base)) == "drop"
    assert b.action(Packet(eth_src=MAC(1), src_ip="10.0.5.77", **base)) == "output:2"
    assert b.action(Packet(eth_src=MAC(1), src_ip="10.0.6.6", **base)) == "drop"
    assert b.action(Packet(eth_src="fa:16:3e:55:55:55", src_ip="10.0.6.6", **base)) == \
        "output:2"
    arp = dict(in_port=1, eth_src=MAC(1), eth_dst="ff:ff:ff:ff:ff:ff", eth_type="arp")
    assert b.action(Packet(**arp, arp_spa="10.0.0.1", arp_sha=MAC(1))) == "normal"
    assert b.action(Packet(**arp, arp_spa="10.0.0.2", arp_sha=MAC(1))) == "drop"
    assert b.action(Packet(**arp, arp_spa="10.0.0.1", arp_sha=MAC(2))) == "drop"
    assert b.action(Packet(**arp, arp_spa="0.0.0.0", arp_sha=MAC(1))) == "normal"
    dhcp_server = Packet(in_port=1, eth_src=MAC(1), eth_dst="ff:ff:ff:ff:ff:ff",
                         src_ip="10.0.0.1", dst_ip="255.255.255.255", proto=17, sport=67,
                         dport=68)
    assert b.action(dhcp_server) == "drop"
    dhcp_client = Packet(in_port=1, eth_src=MAC(1), eth_dst="ff:ff:ff:ff:ff:ff",
                         src_ip="0.0.0.0", dst_ip="255.255.255.255", proto=17, sport=68,
                         dport=67)
    assert b.action(dhcp_client) == "normal"
    lla = "fe80::f816:3eff:fe00:1"
    v6 = dict(in_port=1, eth_src=MAC(1), eth_dst="33:33:00:00:00:01", eth_type="ipv6",
              src_ip=lla, dst_ip="ff02::1", proto=58, icmp_code=0)
    assert b.action(Packet(**v6, icmp_type=134)) == "drop"                 # RA
    assert b.action(Packet(**v6, icmp_type=136, nd_target=lla)) == "normal"
    assert b.action(Packet(**v6, icmp_type=136, nd_target="fe80::1")) == "drop"
    assert b.action(Packet(**v6, icmp_type=135, nd_target="fe80::1")) == "normal"
    assert b.action(Packet(**{**v6, "src_ip": "::"}, icmp_type=135, nd_target=lla)) == "normal"
    assert b.action(Packet(**{**v6, "src_ip": "::"}, icmp_type=128)) == "drop"
    assert b.action(Packet(in_port=1, eth_src=MAC(1), eth_dst=MAC(2), eth_type="lldp")) == "drop"
    assert b.action(Packet(in_port=1, eth_src=MAC(1), eth_dst=MAC(2), vlan=5,
                           src_ip="10.0.0.1", dst_ip="10.0.0.2", proto=6, sport=1,
                           dport=2)) == "drop"


def test_ingress_always_allows_arp_nd_and_dhcp_replies():
    b = Both(view([vm(1, "closed")], [group("closed")]))
    from_uplink = dict(in_port=UPLINK, eth_src="fa:16:3e:99:00:01", eth_dst=MAC(1))
    assert b.action(Packet(**from_uplink, eth_type="arp", arp_spa="10.0.0.9",
                           arp_sha="fa:16:3e:99:00:01")) == "output:1"
    assert b.action(Packet(**from_uplink, src_ip="10.0.0.9", dst_ip="10.0.0.1", proto=17,
                           sport=67, dport=68)) == "output:1"
    assert b.action(Packet(**from_uplink, eth_type="ipv6", src_ip="fe80::1",
                           dst_ip="fe80::f816:3eff:fe00:1", proto=58, icmp_type=134,
                           icmp_code=0)) == "output:1"
    assert b.action(Packet(**from_uplink, src_ip="10.0.0.9", dst_ip="10.0.0.1", proto=6,
                           sport=1, dport=22)) == "drop"


def test_uplink_vlans_and_unknown_ports():
    ports = [vm(1, "web"), Port(id="p5", mac=MAC(5), fixed_ips=("10.0.0.5",), ofport=5,
                                network=5, security_groups=("web",))]
    b = Both(view(ports, [group("web", rule("any", protocol="tcp"), EGRESS_ALL)]))
    tagged = dict(in_port=UPLINK, eth_src="fa:16:3e:99:00:01", src_ip="10.0.0.9",
                  dst_ip="10.0.0.5", proto=6, sport=1, dport=80)
    assert b.action(Packet(**tagged, eth_dst=MAC(5), vlan=5)) == "output:5"
    assert b.action(Packet(**tagged, eth_dst=MAC(5))) == "normal"          # network 0
    assert b.action(Packet(**tagged, eth_dst=MAC(1))) == "output:1"
    assert b.action(Packet(**tagged, eth_dst=MAC(1), vlan=7)) == "drop"    # no such network
    assert b.action(Packet(**{**tagged, "in_port": 42}, eth_dst=MAC(1))) == "drop"
    # Same MAC on another network is another port: zones keep them apart.
    assert b.action(tcp(1, 5, 80)) == "normal"


def test_revocation_marks_and_clears():
    g = group("g", rule("ssh", **SSH), EGRESS_ALL)
    b = Both(view([vm(1, "g"), vm(2)], [g]))
    assert b(tcp(2, 1, 22), "est").commits == ()
    assert b(tcp(2, 1, 80), "est").commits == ("revoke-ingress",)
    assert b(tcp(2, 1, 80), "est", mark=2).action == "drop"
    # Each side clears only its own bit: the sender's egress never undoes the
    # receiver's verdict.
    assert b(tcp(2, 1, 22), "est", mark=3).commits == ("unrevoke-egress", "unrevoke-ingress")
    assert b(tcp(2, 1, 22), "est", mark=2).commits == ("unrevoke-ingress",)
    assert b(tcp(2, 1, 80), "est", mark=1).commits == ("unrevoke-egress", "revoke-ingress")
