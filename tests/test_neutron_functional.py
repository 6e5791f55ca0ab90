"""Neutron's own functional firewall tests (neutron/tests/functional/agent/
test_firewall.py, its OVS scenarios) against sg-ofctl's driver, with Neutron's
OVSFirewallDriver run by the same harness at the same time as the control:
every test that passes for Neutron's driver passes for ours, and the same
tests skip (the five that look at iptables internals)."""
import time

import pytest

import neutron_runner

pytestmark = pytest.mark.root


def test_neutron_functional_firewall_tests_pass_as_for_ovsfirewalldriver(tmp_path):
    start = time.monotonic()
    runs = {}
    for name, driver in (("neutron", None), ("sg_ofctl", neutron_runner.OURS)):
        log = tmp_path / f"{name}.log"
        runs[name] = (neutron_runner.start(tmp_path / name, "run_neutron_fw_tests.py",
                                           driver=driver, log=log), log)
    for proc, _ in runs.values():
        neutron_runner.finish(proc, timeout=1800)
    control = neutron_runner.results(runs["neutron"][1])
    ours = neutron_runner.results(runs["sg_ofctl"][1])
    print(f"{len(control)} tests per driver in {time.monotonic() - start:.0f} s")
    assert len(control) >= 31, runs["neutron"][1].read_text()[-3000:]
    passed_control = {t for t, v in control.items() if v == "ok"}
    assert len(passed_control) >= 26, control  # Neutron's driver on this datapath
    missing = sorted(t for t in passed_control if ours.get(t) != "ok")
    assert not missing, (missing, runs["sg_ofctl"][1].read_text()[-6000:])
    assert {t for t, v in ours.items() if v == "skip"} == \
        {t for t, v in control.items() if v == "skip"}
