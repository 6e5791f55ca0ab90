"""Shared pytest fixtures (append new fixtures at the end)."""


# ---- real Open vSwitch test bed (tests/ovs_testbed.py) --------------------------------
import pytest as _pytest_ovs  # noqa: E402


@_pytest_ovs.fixture
def ovs_testbed():
    """A private ovs-vswitchd with bridge br-int, in its own namespace; closed after."""
    from ovs_testbed import OvsTestbed
    with OvsTestbed() as testbed:
        yield testbed
