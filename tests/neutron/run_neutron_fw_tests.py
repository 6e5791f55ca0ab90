"""Runs Neutron's own functional firewall tests (neutron/tests/functional/agent/
test_firewall.py, OVS scenarios) on the userspace datapath, against Neutron's
OVSFirewallDriver or, with FW_DRIVER=module:Class, another driver.

Run with .venv-neutron's python, inside the network namespace of a private
Open vSwitch whose ovsdb-server listens on tcp:127.0.0.1:6640 and with OVS_RUNDIR
set (tests/test_neutron_functional.py does all that).  Prints one line per test,
"RESULT <test id> <ok|fail|error|skip>", and exits with os._exit (Neutron's
driver leaves a non-daemon conntrack thread behind).

What it changes in Neutron's test set-up, and why:
- bridges are created with datapath_type=netdev (no kernel datapath here);
- the OVS scenarios are switched on (upstream disabled them after the eventlet
  removal, because OVSOFControllerHelper hangs);
- the integration bridge is an ovs-ofctl bridge with the agent's cookie mixin and
  the agent's default table flows (0 -> 60, 60 NORMAL, 62 NORMAL), instead of the
  os-ken one; the driver under test gets that bridge, as OVSFirewallDriver does;
- a third-party driver keeps the scenario name `openvswitch`, so the same five
  tests that look at iptables internals skip for both."""
import importlib
import os
import sys
import unittest


def _patch_netdev():
    from neutron.agent.common import ovs_lib
    init = ovs_lib.OVSBridge.__init__

    def netdev_init(self, br_name, datapath_type=None):
        init(self, br_name, datapath_type="netdev")
    ovs_lib.OVSBridge.__init__ = netdev_init
    add = ovs_lib.BaseOVS.add_bridge
    ovs_lib.BaseOVS.add_bridge = lambda self, name, datapath_type=None: add(self, name, "netdev")


def _ofctl_bridge_class():
    from neutron.agent.common import ovs_lib
    from neutron.plugins.ml2.drivers.openvswitch.agent.openflow import br_cookie
    from neutron_lib.plugins.ml2 import ovs_constants as c

    class OfctlIntegrationBridge(br_cookie.OVSBridgeCookieMixin, ovs_lib.OVSBridge):
        def setup_controllers(self, conf):
            self.add_protocols("OpenFlow10", "OpenFlow13", "OpenFlow14")

        def setup_default_table(self, **kwargs):
            self.add_flow(table=0, priority=0, actions=f"resubmit(,{c.TRANSIENT_TABLE})")
            self.add_flow(table=c.TRANSIENT_TABLE, priority=1, actions="normal")
            self.add_flow(table=c.TRANSIENT_EGRESS_TABLE, priority=3, actions="normal")
    return OfctlIntegrationBridge


def _install_harness(driver_class):
    from unittest import mock

    from neutron.tests.common import conn_testers
    from neutron.tests.functional.agent import test_firewall as tf
    bridge_class = _ofctl_bridge_class()

    def initialize_ovs(self):
        tester = self.useFixture(conn_testers.OVSConnectionTester(self.ip_cidr, bridge_class))
        fw = driver_class(tester.bridge)
        mock.patch("neutron.agent.common.ovs_lib.OVSBridge._set_port_dead").start()
        if os.environ.get("NFW_DUMP_DIR"):  # debugging: the flows as the test ends
            self.addCleanup(_dump_flows, tester.bridge.br_name, self.id())
        return tester, fw
    base = tf.BaseFirewallTestCase
    base.scenarios = base.scenarios_ovs_fw_interfaces
    base.initialize_ovs = initialize_ovs
    tf.FirewallTestCaseIPv6.setUp = base.setUp  # upstream skips it with the OVS scenarios
    return tf


def _dump_flows(bridge, test_id):
    import subprocess
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                         capture_output=True, text=True).stdout
    path = os.path.join(os.environ["NFW_DUMP_DIR"], test_id.split(".")[-1][:60] + ".flows")
    with open(path, "w") as f:
        f.write(out)


def main(patterns):
    os.environ.setdefault("OS_SUDO_TESTING", "1")
    os.environ.setdefault("OS_ROOTWRAP_DAEMON_CMD", "")
    os.environ.setdefault("OS_FAIL_ON_MISSING_DEPS", "1")
    os.environ.setdefault("OSKEN_HUB_TYPE", "native")
    _patch_netdev()
    spec = os.environ.get("FW_DRIVER")
    if spec:
        module, name = spec.split(":")
        driver_class = getattr(importlib.import_module(module), name)
    else:
        from neutron.agent.linux.openvswitch_firewall import OVSFirewallDriver
        driver_class = OVSFirewallDriver
    tf = _install_harness(driver_class)
    loader = unittest.TestLoader()
    suite = tf.load_tests(loader, loader.loadTestsFromModule(tf, pattern=None), None)

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from walk(t)
            else:
                yield t
    tests = [t for t in walk(suite) if getattr(t, "firewall_name", "") == "openvswitch" and
             (not patterns or any(p in t.id() for p in patterns))]
    print(f"{len(tests)} tests selected, driver {driver_class.__module__}."
          f"{driver_class.__name__}", flush=True)

    class Result(unittest.TextTestResult):
        def _report(self, test, verdict):
            print(f"RESULT {test.id()} {verdict}", flush=True)

        def addSuccess(self, test):
            super().addSuccess(test)
            self._report(test, "ok")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._report(test, "fail")

        def addError(self, test, err):
            super().addError(test, err)
            self._report(test, "error")

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            self._report(test, "skip")
    runner = unittest.TextTestRunner(verbosity=1, resultclass=Result, stream=sys.stderr)
    result = runner.run(unittest.TestSuite(tests))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
