"""Shared pytest fixtures (append new fixtures at the end) and settings.

Tests that need root (real Open vSwitch, ovsdb-server, network namespaces) are
marked `root`: `pytest -m "not root"` runs the pure tests as any user."""
import pathlib

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

# A failing example is saved here and replayed first on the next run.
settings.register_profile("sg-ofctl", print_blob=True, database=DirectoryBasedExampleDatabase(
    str(pathlib.Path(__file__).resolve().parent.parent / ".hypothesis" / "examples")))
settings.load_profile("sg-ofctl")


# ---- real Open vSwitch test bed (tests/ovs_testbed.py) --------------------------------
import pytest as _pytest_ovs  # noqa: E402


@_pytest_ovs.fixture
def ovs_testbed():
    """A private ovs-vswitchd with bridge br-int, in its own namespace; closed after."""
    from ovs_testbed import OvsTestbed
    with OvsTestbed() as testbed:
        yield testbed
