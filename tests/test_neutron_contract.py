"""The driver inside the OVS agent's real br-int: the agent's own os-ken app and
OVSIntegrationBridge, loaded by entry point, real VMs and pings, every call
sequence the agent makes (tests/neutron/contract.py has the steps)."""
import pytest

import neutron_runner

pytestmark = pytest.mark.root

STEPS = ("new ports", "unchanged ports re-sent", "rule change", "member change",
         "port security off and on", "cleanup_stale_flows", "OVS restart", "agent restart",
         "port removal")


def test_driver_contract_with_the_agents_integration_bridge(tmp_path):
    log = tmp_path / "contract.log"
    proc = neutron_runner.start(tmp_path / "ovs", "contract.py", log=log)
    rc = neutron_runner.finish(proc, timeout=600)
    text = log.read_text(errors="replace")
    done = [s for s in STEPS if f"STEP {s} ok" in text]
    assert rc == 0 and "CONTRACT OK" in text and done == list(STEPS), text[-4000:]
    assert 'STEP unchanged ports re-sent ok {"flow_mods": 0}' in text
    assert 'STEP agent restart ok {"flow_mods": 0}' in text
