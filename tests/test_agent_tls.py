"""The agent over TLS with its role, end to end (issue 11): a real ovs-vswitchd,
a database member with the agents' relay started in the hypervisor's network
namespace, `sg-ofctl agent` with the hypervisor's certificate (CN = hv1): it
binds the API-made port, creates and binds the tag-made one, traffic flows; the
same certificate cannot write policy."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from agent_testbed import Hypervisor
from ovs_testbed import OvsTestbed
from ovsdb_fixtures import ROOT, ok, short_tmpdir
from sg_ofctl.ovsdb import server
from tls_fixtures import Pki

pytestmark = pytest.mark.root

MAC = {"a": "fa:16:3e:00:0c:0a", "b": "fa:16:3e:00:0c:0b"}
IP = {"a": "10.0.12.1", "b": "10.0.12.2"}
ADMIN_PORT, AGENT_PORT = 16641, 16642      # inside the test bed's own namespace


def _in_ns(tb, *argv, env=None):
    return subprocess.run(["ip", "netns", "exec", tb.ns, sys.executable, "-m",
                           "sg_ofctl.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)


@pytest.fixture(scope="module")
def net():
    pki = Pki.create()
    state = short_tmpdir()
    member = server.Member(state)
    try:
        with OvsTestbed() as tb:
            keys = pki.member("db-1")
            started = _in_ns(tb, *keys.global_args(), "--state-dir", str(state), "db", "start",
                             "--listen", f"ssl:127.0.0.1:{ADMIN_PORT}", "--agent-listen",
                             f"ssl:127.0.0.1:{AGENT_PORT}", "--agent-ca-cert",
                             pki.agent_ca_cert)
            assert started.returncode == 0, started.stderr
            local = member.local_remote          # the admin's unix socket, from here
            ok("port", "create", "pa", "--mac", MAC["a"], "--ip", IP["a"], db=local)
            host = pki.host("hv1")
            tb.env.update({"SG_OFCTL_PRIVATE_KEY": host.private_key,
                           "SG_OFCTL_CERTIFICATE": host.certificate,
                           "SG_OFCTL_CA_CERT": host.ca_cert})
            h = Hypervisor(tb, f"ssl:127.0.0.1:{AGENT_PORT}", "hv1")
            h.start_agent()
            h.vms = {"a": tb.add_vm("a", MAC["a"], [IP["a"]], external_ids={"iface-id": "pa"}),
                     "b": tb.add_vm("b", MAC["b"], [IP["b"]], external_ids={
                         "iface-id": "pb", "attached-mac": MAC["b"],
                         "sg-ofctl-ips": IP["b"]})}
            for vm in h.vms.values():
                h.wait_enforced(vm)
            h.local, h.keys = local, host
            yield h
    finally:
        server.stop(member)
        shutil.rmtree(state, ignore_errors=True)
        pki.close()


def test_the_agent_binds_its_ports_and_creates_its_tag_made_row_over_tls(net):
    ports = {p["Name"]: p for p in json.loads(ok("port", "list", "-f", "json", db=net.local))}
    assert ports["pa"]["Host"] == "hv1" and ports["pb"]["Host"] == "hv1"
    shown = json.loads(ok("port", "show", "pb", "-f", "json", db=net.local))
    assert shown["external_ids"]["sg-ofctl-created-by"] == "hv1"
    a, b = net.vms["a"], net.vms["b"]
    assert a.ping(b.ip) and b.ping(a.ip)       # both in `default`: members reach members
    status = net.status()
    assert status["state"] == "running" and not status.get("errors"), status


def test_the_hypervisors_certificate_cannot_write_policy(net):
    env = {**net.tb.env}
    before = ok("export", db=net.local)
    denied = _in_ns(net.tb, "--db", f"ssl:127.0.0.1:{AGENT_PORT}", "--timeout", "10", "group",
                    "create", "evil", env=env)
    assert denied.returncode == 1
    assert 'permission denied: RBAC rules for client "hv1" role "sg-agent"' in denied.stderr
    assert 'table "Security_Group"' in denied.stderr
    admin_port = _in_ns(net.tb, "--db", f"ssl:127.0.0.1:{ADMIN_PORT}", "--timeout", "3",
                        "group", "create", "evil", env=env)
    assert admin_port.returncode == 1 and "did not answer" in admin_port.stderr
    assert ok("export", db=net.local) == before
