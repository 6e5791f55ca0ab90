"""The rules across ports (groups exist, no stateful/stateless mix, MAC and
fixed IP unique per network, allowed-pair MACs included) have one verdict
whichever way a port comes in: a YAML file (`desired.load`), the command
line on a real ovsdb-server (`sg-ofctl apply`, `port create`, `port set`), and
the agent's view builder.  Each bad case names the same field and value in all
three; each good case passes all three."""
from __future__ import annotations

import pytest

from ovsdb_fixtures import new_database, ok, run_cli
from sg_ofctl import desired, errors, model
from sg_ofctl.agent.local_ovs import LocalInterface, LocalState
from sg_ofctl.agent.sgdb import PortRecord, SgState
from sg_ofctl.agent.view import ViewBuilder

MAC_A, MAC_B = "fa:16:3e:00:07:01", "fa:16:3e:00:07:02"
GROUPS = {"web": True, "raw": False}     # name -> stateful


def port(name, mac, ips=(), groups=(), pairs=(), network=0):
    return dict(name=name, mac=mac, ips=list(ips), groups=list(groups), pairs=list(pairs),
                network=network)


A = port("a", MAC_A, ["10.0.7.1"])
# (case, port a, port b, the field named, the value named) -- None: accepted.
CASES = [
    ("pair-mac-is-another-ports-mac", A,
     port("b", MAC_B, ["10.0.7.2"], pairs=[("10.0.7.99", MAC_A)]), "mac_address", MAC_A),
    ("same-mac", A, port("b", MAC_A, ["10.0.7.2"]), "mac_address", MAC_A),
    ("same-fixed-ip", A, port("b", MAC_B, ["10.0.7.1"]), "fixed_ips", "10.0.7.1"),
    ("missing-group", A, port("b", MAC_B, ["10.0.7.2"], groups=["nosuch"]),
     "security_groups", "nosuch"),
    ("stateful-and-stateless", A, port("b", MAC_B, ["10.0.7.2"], groups=["web", "raw"]),
     "security_groups", ["web", "raw"]),
    ("same-mac-and-ip-on-another-network", A,
     port("b", MAC_A, ["10.0.7.1"], pairs=[("10.0.7.99", MAC_A)], network=5), None, None),
    ("pair-with-its-own-mac", A, port("b", MAC_B, ["10.0.7.2"], pairs=[("10.0.7.9", MAC_B)]),
     None, None),
]
IDS = [c[0] for c in CASES]


def named(field, value) -> str:
    return f"{field}={value!r}"


# ---- the YAML format -------------------------------------------------------------------
def yaml_text(*ports) -> str:
    lines = ["groups:", "  web: {}", "  raw: {stateful: false}", "ports:"]
    for p in ports:
        pairs = ", ".join(f"'{ip},{mac}'" for ip, mac in p["pairs"])
        lines.append(f"  {p['name']}: {{mac: '{p['mac']}', ips: [{', '.join(p['ips'])}], "
                     f"groups: [{', '.join(p['groups'])}], network: {p['network']}, "
                     f"allowed_addresses: [{pairs}]}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case,a,b,field,value", CASES, ids=IDS)
def test_yaml(case, a, b, field, value):
    text = yaml_text(a, b)
    if field is None:
        desired.load(text)
        return
    with pytest.raises(errors.UserError) as err:
        desired.load(text)
    assert named(field, value) in str(err.value)


# ---- the CLI, against a real database ----------------------------------------------------
@pytest.fixture(scope="module")
def db():
    with new_database() as database:
        ok("apply", "-", db=database.remote, stdin=yaml_text())
        yield database


def cli_args(p) -> list[str]:
    args = ["--mac", p["mac"], *(x for ip in p["ips"] for x in ("--ip", ip)),
            *(x for g in p["groups"] for x in ("--group", g)),
            *(x for ip, mac in p["pairs"] for x in ("--allowed-address", f"{ip},{mac}"))]
    return args + (["--network", str(p["network"])] if p["network"] else [])


@pytest.mark.root     # a real ovsdb-server
@pytest.mark.parametrize("case,a,b,field,value", CASES, ids=IDS)
def test_cli_apply_port_create_and_set(db, case, a, b, field, value):
    ok("apply", "-", db=db.remote, stdin=yaml_text(a))     # only port a
    before = ok("export", db=db.remote)
    rc, _, err = run_cli("apply", "-", db=db.remote, stdin=yaml_text(a, b))
    if field is None:
        assert rc == 0, err
        ok("apply", "-", db=db.remote, stdin=yaml_text(a))
    else:
        assert rc == 1 and named(field, value) in err, err
        assert ok("export", db=db.remote) == before
    rc, _, err = run_cli("port", "create", "b", *cli_args(b), db=db.remote)
    if field is None:
        assert rc == 0, err
        return
    assert rc == 1 and named(field, value) in err, err
    assert ok("export", db=db.remote) == before
    # The same port, reached by `port set` from a harmless one.
    ok("port", "create", "b", "--mac", "fa:16:3e:00:07:0b", "--ip", "10.0.7.11",
       db=db.remote)
    changes = ["--no-ip", "--no-group", "--no-allowed-address", *cli_args(b)]
    rc, _, err = run_cli("port", "set", "b", *changes, db=db.remote)
    assert rc == 1 and named(field, value) in err, err


# ---- the agent's view builder ------------------------------------------------------------
def model_port(p, groups_by_name) -> model.Port:
    return model.Port(id=f"id-{p['name']}", name=p["name"], mac=p["mac"],
                      fixed_ips=tuple(p["ips"]), network=p["network"],
                      security_groups=tuple(groups_by_name.get(g, g) for g in p["groups"]),
                      allowed_address_pairs=tuple(
                          model.AddressPair(ip, mac) for ip, mac in p["pairs"]))


@pytest.mark.parametrize("case,a,b,field,value", CASES, ids=IDS)
def test_agent_view(case, a, b, field, value):
    groups = {g.id: g for g in (model.default_group(),
                                *(model.SecurityGroup(id=f"g-{n}", name=n, stateful=s)
                                  for n, s in GROUPS.items()))}
    ids = {g.name: g.id for g in groups.values()}
    ports = [model_port(p, ids) for p in (a, b)]
    sg = SgState(groups, {**ids, **{g: g for g in groups}},
                 {p.name: PortRecord(p.id, p.name, p, None, {}) for p in ports},
                 {gid: model.MemberAddresses.parse([]) for gid in groups})
    local = LocalState(True, 1, tuple(LocalInterface(f"tap-{p.name}", f"tap-{p.name}", i,
                                                     {"iface-id": p.name})
                                      for i, p in enumerate(ports, 1)))
    built = ViewBuilder().build(local, sg)
    if field is None:
        assert built.problems == {} and len(built.view.ports) == 2
        return
    assert named(field, value) in built.problems["tap-b"], built.problems
    assert "tap-b" not in built.ports_by_iface
