"""Bad input through the CLI: every error names the field and value, exits non-zero
with one line on stderr, and changes nothing (export and Global.revision are the
same before and after)."""
from __future__ import annotations

import json
import time

import pytest

from ovsdb_fixtures import free_tcp_port, new_database, ok, run_cli

pytestmark = pytest.mark.root   # a real ovsdb-server

BASELINE = """
groups:
  web:
    rules:
      - {direction: ingress, protocol: tcp, dst_port: 80}
      - {direction: ingress, protocol: tcp, dst_port: 22, remote_group: ssh-bastion}
  db:
    rules:
      - {direction: ingress, protocol: tcp, dst_port: 5432, remote_group: web}
  ssh-bastion:
    rules:
      - {direction: ingress, protocol: tcp, dst_port: 22, remote_ip: 192.0.2.0/24}
  raw:
    stateful: false
  spare: {}
ports:
  web-1: {mac: "fa:16:3e:00:00:11", ips: [10.0.0.11], groups: [web], network: 1}
  db-1: {mac: "fa:16:3e:00:00:21", ips: [10.0.0.21], groups: [db], network: 1}
  raw-1: {mac: "fa:16:3e:00:00:31", ips: [10.0.0.31], groups: [raw], network: 1}
  plain-1: {mac: "fa:16:3e:00:00:41", ips: [10.0.0.41], network: 1}
"""

P = ["port", "create", "p9", "--mac", "fa:16:3e:00:09:99", "--ip", "10.0.0.99"]
R = ["rule", "create", "web"]

# (id, argv, stdin, expected fragments of the one-line error)
CASES = [
    # rules: every model validation case, named by the CLI's field names
    ("proto-name", R + ["--protocol", "tcpx"], None, ["protocol='tcpx'", "unknown protocol"]),
    ("proto-number", R + ["--protocol", "256"], None, ["protocol=256", "between 0 and 255"]),
    ("port-zero", R + ["--protocol", "tcp", "--dst-port", "0"], None, ["dst_port='0'"]),
    ("port-high", R + ["--protocol", "udp", "--dst-port", "70000"], None,
     ["dst_port='70000'", "65535"]),
    ("port-reversed", R + ["--protocol", "tcp", "--dst-port", "90:80"], None,
     ["dst_port='90:80'", "greater than"]),
    ("port-text", R + ["--protocol", "tcp", "--dst-port", "http"], None,
     ["dst_port='http'", "PORT or MIN:MAX"]),
    ("port-no-proto", R + ["--dst-port", "80"], None, ["dst_port='80'", "tcp, udp or sctp"]),
    ("port-icmp", R + ["--protocol", "icmp", "--dst-port", "8"], None,
     ["dst_port='8'", "icmp_type"]),
    ("port-gre", R + ["--protocol", "gre", "--dst-port", "80"], None,
     ["dst_port='80'", "has no ports"]),
    ("port-dccp", R + ["--protocol", "dccp", "--dst-port", "80"], None,
     ["dst_port='80'", "cannot match dccp"]),
    ("icmp-type-range", R + ["--protocol", "icmp", "--icmp-type", "256"], None,
     ["icmp_type=256", "between 0 and 255"]),
    ("icmp-code-no-type", R + ["--protocol", "icmp", "--icmp-code", "3"], None,
     ["icmp_code=3", "needs an ICMP type"]),
    ("icmp-type-tcp", R + ["--protocol", "tcp", "--icmp-type", "3"], None,
     ["icmp_type=3", "icmp or icmpv6"]),
    ("icmp-type-text", R + ["--protocol", "icmp", "--icmp-type", "echo"], None,
     ["icmp_type='echo'", "integer"]),
    ("ethertype", R + ["--ethertype", "IPv5"], None, ["ethertype='IPv5'"]),
    ("icmpv6-on-ipv4", R + ["--protocol", "icmpv6"], None,
     ["protocol='icmpv6'", "ethertype IPv6"]),
    ("cidr-length", R + ["--remote-ip", "10.0.0.0/33"], None, ["remote_ip='10.0.0.0/33'"]),
    ("cidr-family", R + ["--remote-ip", "fd00::/8"], None,
     ["remote_ip='fd00::/8'", "does not match ethertype IPv4"]),
    ("cidr-text", R + ["--remote-ip", "banana"], None, ["remote_ip='banana'"]),
    ("remote-group", R + ["--remote-group", "nosuch"], None,
     ["remote_group='nosuch'", "no such security group"]),
    ("remote-both", R + ["--remote-ip", "1.2.3.4/32", "--remote-group", "db"], None,
     ["--remote-group", "not allowed with argument --remote-ip"]),
    ("action", R + ["--action", "permit"], None, ["action='permit'", "allow, deny"]),
    ("rule-group", ["rule", "create", "nosuch"], None, ["security_group='nosuch'"]),
    ("rule-duplicate", R + ["--protocol", "tcp", "--dst-port", "80"], None,
     ["identical rule"]),
    ("rule-show", ["rule", "show", "nosuch-id"], None, ["rule='nosuch-id'", "no such"]),
    ("rule-delete-partial", ["rule", "delete", "@web-rule", "nosuch-id"], None,
     ["rule='nosuch-id'"]),
    # groups
    ("group-duplicate", ["group", "create", "web"], None, ["name='web'", "exists"]),
    ("group-empty-name", ["group", "create", " "], None, ["name=' '", "non-empty"]),
    ("group-used-by-port", ["group", "delete", "db"], None,
     ["security_group='db'", "in use by ports db-1"]),
    ("group-used-as-remote", ["group", "delete", "ssh-bastion"], None,
     ["security_group='ssh-bastion'", "remote group", "web (rule"]),
    ("group-default", ["group", "delete", "default"], None,
     ["security_group='default'", "cannot be deleted"]),
    ("group-unknown", ["group", "delete", "nosuch"], None, ["security_group='nosuch'"]),
    ("group-delete-partial", ["group", "delete", "spare", "nosuch"], None,
     ["security_group='nosuch'"]),
    ("group-rename-clash", ["group", "set", "web", "--name", "db"], None,
     ["name='db'", "exists"]),
    ("group-rename-default", ["group", "set", "default", "--name", "other"], None,
     ["name='other'", "default group cannot be renamed"]),
    ("group-stateful-in-use", ["group", "set", "web", "--stateless"], None,
     ["stateful=False", "web-1"]),
    ("default-stateful-in-use", ["group", "set", "default", "--stateless"], None,
     ["stateful=False", "plain-1"]),
    ("group-set-unknown", ["group", "set", "nosuch", "--description", "x"], None,
     ["security_group='nosuch'"]),
    ("group-show-unknown", ["group", "show", "nosuch"], None, ["security_group='nosuch'"]),
    # ports
    ("mac-text", ["port", "create", "p9", "--mac", "zz", "--ip", "10.0.0.99"], None,
     ["mac_address='zz'", "not a MAC"]),
    ("mac-multicast", ["port", "create", "p9", "--mac", "01:00:5e:00:00:01", "--ip",
                       "10.0.0.99"], None, ["mac_address='01:00:5e:00:00:01'", "multicast"]),
    ("ip-text", ["port", "create", "p9", "--mac", "fa:16:3e:00:09:99", "--ip", "10.0.0.300"],
     None, ["fixed_ips='10.0.0.300'", "not an IP address"]),
    ("ip-prefix", ["port", "create", "p9", "--mac", "fa:16:3e:00:09:99", "--ip",
                   "10.0.0.0/24"], None, ["fixed_ips='10.0.0.0/24'"]),
    ("port-duplicate-name", ["port", "create", "web-1", "--mac", "fa:16:3e:00:09:99",
                             "--ip", "10.0.0.99"], None, ["name='web-1'", "exists"]),
    ("port-duplicate-ip", P[:5] + ["--ip", "10.0.0.11", "--network", "1"], None,
     ["fixed_ips='10.0.0.11'", "port 'web-1'", "network 1"]),
    ("port-duplicate-mac", ["port", "create", "p9", "--mac", "fa:16:3e:00:00:21", "--ip",
                            "10.0.0.99", "--network", "1"], None,
     ["mac_address='fa:16:3e:00:00:21'", "port 'db-1'"]),
    ("port-group", P + ["--group", "nosuch"], None, ["security_groups='nosuch'"]),
    ("network-range", P + ["--network", "4095"], None, ["network=4095", "0 and 4094"]),
    ("network-text", P + ["--network", "blue"], None, ["network='blue'", "integer"]),
    ("pair-mac", P + ["--allowed-address", "10.0.0.1,zz"], None,
     ["allowed_address_pairs.mac_address='zz'"]),
    ("pair-ip", P + ["--allowed-address", "nope"], None,
     ["allowed_address_pairs.ip_address='nope'"]),
    ("no-port-security-groups", P + ["--no-port-security", "--group", "web"], None,
     ["security_groups=", "port security is disabled"]),
    ("mixed-stateful", P + ["--group", "web", "--group", "raw"], None,
     ["security_groups=", "mixes stateful and stateless"]),
    ("port-missing-mac", ["port", "create", "p9", "--ip", "10.0.0.99"], None,
     ["the following arguments are required: --mac"]),
    ("port-set-unknown", ["port", "set", "nosuch", "--ip", "10.0.0.99"], None,
     ["port='nosuch'"]),
    ("port-set-duplicate-ip", ["port", "set", "web-1", "--ip", "10.0.0.21"], None,
     ["fixed_ips='10.0.0.21'", "port 'db-1'"]),
    ("port-delete-partial", ["port", "delete", "web-1", "nosuch"], None, ["port='nosuch'"]),
    # apply: the file is checked before anything changes
    ("yaml-syntax", ["apply", "-"], "groups:\n  web: {rules: [\nports: {}\n",
     ["<stdin>:4:1", "malformed YAML"]),
    ("yaml-duplicate-key", ["apply", "-"], "groups:\n  web: {}\n  web: {}\n",
     ["<stdin>:3:", "duplicate key 'web'"]),
    ("yaml-top-key", ["apply", "-"], "groups: {}\nnetworks: {}\n",
     ["networks=", "unknown field"]),
    ("yaml-groups-list", ["apply", "-"], "groups: [web, db]\n",
     ["groups=", "must be a mapping"]),
    ("yaml-bad-rule", ["apply", "-"],
     "groups:\n  web:\n    rules:\n      - {direction: ingress, protocol: tcpx}\n",
     ["<stdin>:4", "groups.web.rules[0]", "protocol='tcpx'"]),
    ("yaml-rule-key", ["apply", "-"],
     "groups:\n  web:\n    rules:\n      - {direction: ingress, port: 80}\n",
     ["port=80", "unknown rule field"]),
    ("yaml-remote-group", ["apply", "-"],
     "groups:\n  web:\n    rules:\n      - {remote_group: nosuch}\n",
     ["remote_group='nosuch'", "names a group that does not exist"]),
    ("yaml-port-group", ["apply", "-"],
     "ports:\n  p: {mac: 'fa:16:3e:00:00:01', ips: [10.0.0.1], groups: [nosuch]}\n",
     ["groups='nosuch'"]),
    ("yaml-duplicate-ip", ["apply", "-"],
     "ports:\n  a: {mac: 'fa:16:3e:00:00:01', ips: [10.0.0.1]}\n"
     "  b: {mac: 'fa:16:3e:00:00:02', ips: [10.0.0.1]}\n",
     ["fixed_ips='10.0.0.1'", "used by port 'a' and port 'b'"]),
    ("yaml-ips-scalar", ["apply", "-"],
     "ports:\n  a: {mac: 'fa:16:3e:00:00:01', ips: 10.0.0.1}\n",
     ["ips='10.0.0.1'", "must be a list"]),
    ("yaml-stateful-in-use", ["apply", "-"],
     "groups:\n  web: {stateful: false}\n"
     "ports:\n  web-1: {mac: 'fa:16:3e:00:00:11', ips: [10.0.0.11], groups: [web],"
     " network: 1}\n", ["groups.web.stateful=False", "web-1"]),
    ("yaml-missing-file", ["apply", "/nonexistent/desired.yaml"], None,
     ["No such file", "/nonexistent/desired.yaml"]),
    # hostile text and numbers (issue 11)
    ("name-escape", ["group", "create", "evil\x1b[2J"], None,
     ["name='evil\\x1b[2J'", "control character U+001B"]),
    ("name-comma", ["group", "create", "web,db"], None, ["name='web,db'", "comma"]),
    ("name-bidi", ["group", "create", "admin\u202egpj.exe"], None,
     ["U+202E"]),
    ("name-long", ["group", "create", "n" * 5000], None,
     ["5000 characters long", "at most 255"]),
    ("description-bell", ["group", "set", "web", "--description", "ring\x07"], None,
     ["description='ring\\x07'", "U+0007"]),
    ("rule-description-newline", R + ["--description", "a\nb"], None,
     ["description='a\\nb'", "U+000A"]),
    ("port-name-escape", ["port", "create", "p\x9b9", "--mac", "fa:16:3e:00:09:99", "--ip",
                          "10.0.0.99"], None,
     ["name='p\\x9b9'", "U+009B"]),
    ("port-fullwidth", R + ["--protocol", "tcp", "--dst-port", "\uff18\uff10"], None,
     ["dst_port='\uff18\uff10'", "PORT or MIN:MAX"]),
    ("port-superscript-range", R + ["--protocol", "tcp", "--dst-port", "80:\u00b2"], None,
     ["dst_port='80:\u00b2'"]),
    ("proto-arabic-indic", R + ["--protocol", "\u0661\u0667"], None,
     ["protocol='\u0661\u0667'", "unknown protocol"]),
    ("icmp-type-superscript", R + ["--protocol", "icmp", "--icmp-type", "\u00b2"], None,
     ["icmp_type='\u00b2'", "integer"]),
    ("network-fullwidth", P + ["--network", "\uff16"], None, ["network='\uff16'", "integer"]),
    ("network-huge", P + ["--network", "9" * 5000], None, ["network='999", "integer"]),
    ("explain-port-digits", ["explain", "--from", "web-1", "--to", "db-1", "--dst-port",
                             "\u0665"], None, ["not a number"]),
    ("yaml-alias-bomb", ["apply", "-"], None,
     ["<stdin>:", "aliases repeat more than 10,000 nodes"]),
    ("yaml-alias-cycle", ["apply", "-"], "groups: &g\n  web: *g\n",
     ["<stdin>:", "refers to its own anchor"]),
    ("yaml-list-key", ["apply", "-"], "groups:\n  [a, b]: {}\n",
     ["<stdin>:2:3", "a key must be a string, not a list"]),
    ("yaml-int-key", ["apply", "-"], "ports:\n  80: {mac: 'fa:16:3e:00:00:01'}\n",
     ["<stdin>:2:3", "not int 80", "quote it"]),
    ("yaml-bool-key", ["apply", "-"], "groups:\n  web:\n    yes: 1\n",
     ["<stdin>:3:5", "not bool True"]),
    ("yaml-escape-name", ["apply", "-"], 'groups:\n  "web\\e[31m": {}\n',
     ["<stdin>:2", "groups.web\\x1b[31m", "U+001B"]),
    ("yaml-huge-int", ["apply", "-"], "ports:\n  a: {network: " + "7" * 5000 + "}\n",
     ["<stdin>:2:", "an integer of 5000 digits"]),
    ("yaml-huge-value", ["apply", "-"],
     "groups:\n  web:\n    description: " + "d" * 200_000 + "\n",
     ["<stdin>:3", "description='ddd", "200000 characters long"]),
    ("yaml-unicode-port", ["apply", "-"],
     "groups:\n  web:\n    rules:\n      - {protocol: tcp, dst_port: \u0668\u0660}\n",
     ["<stdin>:4", "dst_port='\u0668\u0660'"]),
    ("yaml-unicode-network", ["apply", "-"],
     "ports:\n  a: {mac: 'fa:16:3e:00:00:01', network: \uff17}\n",
     ["network='\uff17'", "integer"]),
    ("timeout-fullwidth", ["--timeout", "\uff11\uff10", "group", "list"], None,
     ["--timeout", "seconds"]),
    ("timeout-zero", ["--timeout", "0", "group", "list"], None, ["--timeout", "more than 0"]),
    # the database and global options
    ("bad-remote", ["--db", "bogus:thing", "group", "list"], None, ["db='bogus:thing'"]),
    ("bad-format", ["group", "list", "-f", "xml"], None, ["invalid choice: 'xml'"]),
]


def _alias_bomb() -> str:
    """The 'billion laughs': 9 levels of 9 aliases, ~600 bytes, 387 million nodes."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level, previous in zip("bcdefghi", "abcdefgh"):
        text += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    return text + "groups:\n  web: {description: *i}\n"


CASES = [(c[0], c[1], _alias_bomb() if c[0] == "yaml-alias-bomb" else c[2], c[3])
         for c in CASES]


@pytest.fixture(scope="module")
def baseline():
    with new_database() as db:
        ok("apply", "-", db=db.remote, stdin=BASELINE)
        yield db


def snapshot(db) -> tuple:
    from sg_ofctl.ovsdb import api
    with api.connect(db.remote) as handle:
        revision = handle.read(lambda t: next(iter(t["Global"].rows.values())).revision)
    return ok("export", db=db.remote), revision


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,argv,stdin,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(baseline, case_id, argv, stdin, expected):
    argv = list(argv)
    if "@web-rule" in argv:
        rules = json.loads(ok("rule", "list", "web", "-f", "json", db=baseline.remote))
        argv[argv.index("@web-rule")] = rules[0]["ID"]
    before = snapshot(baseline)
    db = None if argv[0] == "--db" else baseline.remote
    rc, out, err = run_cli(*argv, db=db, stdin=stdin)
    assert rc != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert lines, "no error message"
    message = lines[-1] if rc == 2 else err.strip()
    if rc != 2:       # argparse prints usage first; ours is exactly one line
        assert len(lines) == 1, err
        assert message.startswith("sg-ofctl: error: ")
    for fragment in expected:
        assert fragment in message, (fragment, message)
    # a value is quoted with at most ~100 characters, control characters escaped
    assert len(message) < 400, message
    assert message.isprintable(), message
    assert snapshot(baseline) == before


def test_unreachable_database_times_out_with_a_clear_message(baseline):
    before = snapshot(baseline)
    port = free_tcp_port()
    start = time.monotonic()
    rc, out, err = run_cli("--timeout", "1", "--db", f"tcp:127.0.0.1:{port}", "group",
                           "list")
    elapsed = time.monotonic() - start
    assert rc == 1 and out == ""
    assert f"db='tcp:127.0.0.1:{port}'" in err and "did not answer within 1 s" in err
    assert len(err.strip().splitlines()) == 1
    assert elapsed < 5
    assert snapshot(baseline) == before
