"""Every bad input gives one ValidationError naming the field and the value."""
import pytest

from sg_ofctl.model import (AddressPair, HostView, Port, Rule, SecurityGroup, ValidationError,
                            build_groups)
from sg_ofctl.safetext import quote

R = dict(id="r1", security_group_id="g")
P = dict(id="p1", mac="fa:16:3e:00:00:01", fixed_ips=("10.0.0.1",), ofport=1)

BAD_RULES = [
    ({"direction": "inbound"}, "direction", "inbound"),
    ({"direction": None}, "direction", None),
    ({"ethertype": "ipv4"}, "ethertype", "ipv4"),
    ({"ethertype": "IPv5"}, "ethertype", "IPv5"),
    ({"action": "reject"}, "action", "reject"),
    ({"protocol": "tcpp"}, "protocol", "tcpp"),
    ({"protocol": 256}, "protocol", 256),
    ({"protocol": -1}, "protocol", -1),
    ({"protocol": True}, "protocol", True),
    ({"protocol": "icmpv6"}, "protocol", "icmpv6"),
    ({"protocol": "58"}, "protocol", "58"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, "port_range_min", 0),
    ({"protocol": "tcp", "port_range_min": 10, "port_range_max": 65536}, "port_range_max", 65536),
    ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, "port_range_min", 90),
    ({"protocol": "tcp", "port_range_min": 80}, "port_range_max", None),
    ({"protocol": "udp", "port_range_max": 80}, "port_range_min", None),
    ({"protocol": "tcp", "port_range_min": "eighty", "port_range_max": 80},
     "port_range_min", "eighty"),
    ({"protocol": "tcp", "port_range_min": 1.5, "port_range_max": 80}, "port_range_min", 1.5),
    ({"protocol": "dccp", "port_range_min": 80, "port_range_max": 80}, "port_range_min", 80),
    ({"protocol": "udplite", "port_range_min": 5, "port_range_max": 9}, "port_range_min", 5),
    ({"protocol": "33", "port_range_min": 5, "port_range_max": 9}, "port_range_min", 5),
    ({"protocol": "gre", "port_range_min": 5, "port_range_max": 9}, "port_range_min", 5),
    ({"protocol": None, "port_range_min": 5, "port_range_max": 9}, "port_range_min", 5),
    ({"protocol": "icmp", "port_range_min": 256}, "port_range_min", 256),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 256}, "port_range_max", 256),
    ({"protocol": "icmp", "port_range_max": 0}, "port_range_max", 0),
    ({"protocol": "icmp", "port_range_min": -1}, "port_range_min", -1),
    ({"remote_ip_prefix": "10.0.0.300/24"}, "remote_ip_prefix", "10.0.0.300/24"),
    ({"remote_ip_prefix": "10.0.0.0/33"}, "remote_ip_prefix", "10.0.0.0/33"),
    ({"remote_ip_prefix": "banana"}, "remote_ip_prefix", "banana"),
    ({"remote_ip_prefix": 10}, "remote_ip_prefix", 10),
    ({"remote_ip_prefix": "fd00::/64"}, "remote_ip_prefix", "fd00::/64"),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, "remote_ip_prefix", "10.0.0.0/8"),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "g"}, "remote_group_id", "g"),
    ({"remote_group_id": ""}, "remote_group_id", ""),
    ({"description": 5}, "description", 5),
    ({"id": ""}, "id", ""),
    # hostile text and numbers
    ({"description": "ok\x1b[2Jwiped"}, "description", "ok\x1b[2Jwiped"),
    ({"description": "two\nlines"}, "description", "two\nlines"),
    ({"description": "evil\u202eroot"}, "description", "evil\u202eroot"),
    ({"description": "x" * 256}, "description", "x" * 256),
    ({"protocol": "\u0661\u0667"}, "protocol", "\u0661\u0667"),      # Arabic-Indic 17
    ({"protocol": "tcp", "port_range_min": "\uff18\uff10", "port_range_max": 80},
     "port_range_min", "\uff18\uff10"),                                # fullwidth 80
    ({"protocol": "icmp", "port_range_min": "\u00b2"}, "port_range_min", "\u00b2"),
    ({"protocol": "tcp", "port_range_min": "9" * 40, "port_range_max": 80},
     "port_range_min", "9" * 40),
]


@pytest.mark.parametrize("fields,field,value", BAD_RULES)
def test_bad_rule(fields, field, value):
    with pytest.raises(ValidationError) as err:
        Rule(**{**R, **fields})
    assert err.value.field == field
    assert err.value.value == value
    assert field in str(err.value) and quote(value) in str(err.value)


BAD_PORTS = [
    ({"mac": "fa:16:3e:00:00"}, "mac_address"),
    ({"mac": "01:00:5e:00:00:01"}, "mac_address"),
    ({"mac": "00:00:00:00:00:00"}, "mac_address"),
    ({"mac": None}, "mac_address"),
    ({"fixed_ips": ("10.0.0.256",)}, "fixed_ips"),
    ({"fixed_ips": ("10.0.0.0/24",)}, "fixed_ips"),
    ({"fixed_ips": "10.0.0.1"}, "fixed_ips"),
    ({"allowed_address_pairs": ("nonsense",)}, "allowed_address_pairs.ip_address"),
    ({"allowed_address_pairs": ({"ip_address": "10.0.0.9", "mac_address": "zz"},)},
     "allowed_address_pairs.mac_address"),
    ({"allowed_address_pairs": ({"ip": "10.0.0.9"},)}, "allowed_address_pairs"),
    ({"allowed_address_pairs": ({"ip_address": "10.0.0.9", "extra": 1},)},
     "allowed_address_pairs.extra"),
    ({"port_security_enabled": "yes"}, "port_security_enabled"),
    ({"port_security_enabled": False, "security_groups": ("web",)}, "security_groups"),
    ({"port_security_enabled": False, "allowed_address_pairs": ("10.0.0.9",)},
     "allowed_address_pairs"),
    ({"security_groups": "web"}, "security_groups"),
    ({"security_groups": ("",)}, "security_groups"),
    ({"network": 4095}, "network"),
    ({"network": -1}, "network"),
    ({"network": "blue"}, "network"),
    ({"ofport": 0}, "ofport"),
    ({"id": ""}, "port.id"),
    ({"name": "vm\x07bell"}, "name"),
    ({"name": "vm\x9b31m"}, "name"),                  # C1 CSI
    ({"name": "p" * 256}, "name"),
    ({"network": "\uff16"}, "network"),               # fullwidth 6
    ({"network": "\u00b2"}, "network"),
    ({"network": " 7\u0661"}, "network"),
]


@pytest.mark.parametrize("fields,field", BAD_PORTS)
def test_bad_port(fields, field):
    with pytest.raises(ValidationError) as err:
        Port(**{**P, **fields})
    assert err.value.field == field
    assert field in str(err.value)


def _view(**kw):
    args = dict(ports=(Port(**P),), groups={}, members={})
    args.update(kw)
    return HostView(**args)


BAD_VIEWS = [
    (dict(ports=(Port(**{**P, "security_groups": ("nope",)}),)), "security_groups", "nope"),
    (dict(groups=build_groups([{"id": "g", "rules": [
        {"id": "r", "remote_group_id": "ghost"}]}])), "remote_group_id", "ghost"),
    (dict(ports=(Port(**{**P, "ofport": None}),)), "ofport", None),
    (dict(ports=(Port(**P), Port(**{**P, "id": "p2", "mac": "fa:16:3e:00:00:02"}))),
     "ofport", 1),
    (dict(ports=(Port(**P), Port(**{**P, "id": "p2", "ofport": 2}))),
     "mac_address", "fa:16:3e:00:00:01"),
    (dict(uplinks=(1,)), "ofport", 1),
    (dict(members={"default": ["10.0.0.x"]}), "members[default]", "10.0.0.x"),
    (dict(members={"default": "10.0.0.1"}), "members[default]", "10.0.0.1"),
    (dict(ports=(Port(**{**P, "security_groups": ("a", "b")}),),
          groups=build_groups([{"id": "a"}, {"id": "b", "stateful": False}])),
     "security_groups", ["a", "b"]),
]


@pytest.mark.parametrize("kw,field,value", BAD_VIEWS)
def test_bad_view(kw, field, value):
    with pytest.raises(ValidationError) as err:
        _view(**kw)
    assert (err.value.field, err.value.value) == (field, value)


BAD_GROUPS = [
    ([{"id": "g", "stateful": "no"}], "stateful"),
    ([{"id": "g"}, {"id": "g"}], "security_group.id"),
    ([{"id": "g", "colour": "red"}], "colour"),
    ([{"id": "g", "rules": [{"id": "r", "port": 80}]}], "port"),
    ([{"id": "g", "rules": ["tcp"]}], "rules"),
    ([{"id": "g", "rules": [{"id": "a", "protocol": "tcp"}, {"id": "b", "protocol": "6"}]}],
     "rule"),
    ([{"id": "g", "rules": [{"id": "a", "remote_ip_prefix": "10.1.2.3/8"},
                            {"id": "b", "remote_ip_prefix": "10.0.0.0/8"}]}], "rule"),
    ([{"id": "g", "rules": [{"id": "a", "security_group_id": "other"}]}], "security_group_id"),
    (["g"], "security_groups"),
    ([{"id": "g", "name": "web,db"}], "name"),
    ([{"id": "g", "name": "\x1b]0;owned\x07"}], "name"),
    ([{"id": "g", "description": "a\x00b"}], "description"),
    ([{"id": "g\x1b"}], "security_group.id"),
    ([{"id": "g", "name": "n" * 300}], "name"),
]


@pytest.mark.parametrize("groups,field", BAD_GROUPS)
def test_bad_group(groups, field):
    with pytest.raises(ValidationError) as err:
        build_groups(groups)
    assert err.value.field == field


def test_at_least_forty_bad_inputs():
    assert len(BAD_RULES) + len(BAD_PORTS) + len(BAD_VIEWS) + len(BAD_GROUPS) >= 40


def test_prefixes_are_normalised_and_visible():
    rule = Rule(**R, remote_ip_prefix="10.1.2.3/8")
    assert rule.remote_ip_prefix == "10.1.2.3/8"
    assert rule.normalized_cidr == "10.0.0.0/8"
    assert Rule(**R, ethertype="IPv6", remote_ip_prefix="fd00::1/64").normalized_cidr == \
        "fd00::/64"
    assert Rule(**R, remote_ip_prefix="0.0.0.0/0").remote_net is None
    assert AddressPair("10.0.0.9/24").ip_address == "10.0.0.0/24"
    assert AddressPair("10.0.0.9").ip_address == "10.0.0.9"


def test_protocol_names_and_numbers():
    assert Rule(**R, protocol="TCP").ip_proto == 6
    assert Rule(**R, protocol="6").ip_proto == 6
    assert Rule(**R, protocol="icmp", ethertype="IPv6").ip_proto == 58
    assert Rule(**R, protocol="ipv6-icmp", ethertype="IPv6").ip_proto == 58
    assert Rule(**R, protocol="any").ip_proto is None
    full = Rule(**R, protocol="tcp", port_range_min=1, port_range_max=65535)
    assert full.port_range is None
    assert Rule(**R, protocol="dccp").ip_proto == 33  # no ports: fine


def test_port_without_groups_gets_default():
    view = _view()
    assert view.ports[0].effective_groups == ("default",)
    assert "default" in view.groups
    unfiltered = Port(**{**P, "port_security_enabled": False})
    assert unfiltered.effective_groups == ()


@pytest.mark.parametrize("value", [
    "v" * 1_000_000,
    ["10.0.0.x"] * 1_000_000,
    {f"k{i}": "v" * 1000 for i in range(1000)},
    [[[[[["deep"] * 10] * 10] * 10] * 10] * 10] * 10,
    10 ** 5000,
    b"\xff" * 10_000,
], ids=["long-str", "long-list", "big-dict", "nested", "huge-int", "bytes"])
def test_an_error_quotes_at_most_about_100_characters(value):
    err = ValidationError("name", value, "is bad")
    assert len(str(err)) <= len("name=: is bad") + 100
    assert err.value is value


def test_the_quote_is_the_repr_when_short():
    for value in ("web", 80, None, ["a", "b"], {"ip": "10.0.0.1"}, ("x",), "\x1b[2J"):
        assert quote(value) == repr(value)


def test_ascii_digits_only_and_text_limits_accept_the_ordinary():
    assert Rule(**R, protocol="tcp", port_range_min=" 80", port_range_max="443")\
        .port_range == (80, 443)
    assert Port(**{**P, "network": "12", "name": "tap-\u00e9t\u00e9 \u2603"}).network == 12
    assert SecurityGroup(id="g", name="n" * 255, description="d" * 255).name == "n" * 255
