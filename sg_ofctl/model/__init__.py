"""The model: validated, immutable security groups, rules and ports (values.py),
and what holds across ports, with the compiler's input (hostview.py).  Pure: no
I/O.  Every other package takes its domain rules from here."""
from sg_ofctl.model.hostview import (AddressClash, HostView, MemberAddresses, build_groups,
                                     check_ports, check_remote_groups, group_members,
                                     host_view, port_problems)
from sg_ofctl.model.values import (ACTIONS, DEFAULT_GROUP, DIRECTIONS, ETHERTYPES,
                                   ICMP_NUMBERS, PORT_PROTOCOLS, PROTOCOL_NUMBERS,
                                   UNMATCHABLE_PORT_PROTOCOLS, AddressPair, Port, Rule,
                                   SecurityGroup, ValidationError, default_group, parse_cidr,
                                   parse_ip, parse_mac, parse_protocol, require_choice)

__all__ = [
    "ACTIONS", "DEFAULT_GROUP", "DIRECTIONS", "ETHERTYPES", "ICMP_NUMBERS", "PORT_PROTOCOLS",
    "PROTOCOL_NUMBERS", "UNMATCHABLE_PORT_PROTOCOLS", "AddressClash", "AddressPair",
    "HostView", "MemberAddresses", "Port", "Rule", "SecurityGroup", "ValidationError",
    "build_groups", "check_ports", "check_remote_groups", "default_group", "group_members",
    "host_view", "parse_cidr", "parse_ip", "parse_mac", "parse_protocol", "port_problems",
    "require_choice",
]
