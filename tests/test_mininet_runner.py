"""mininet/run.py: Mininet hosts tagged by their switch, the agent(s) as controller,
the groups of examples/three-tier.yaml; every probe agrees with the reference,
on one hypervisor and on two sharing one database; nothing is left behind."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sg_ofctl.sandbox.ledger import list_netns

pytestmark = pytest.mark.root   # real OVS / ovsdb-server / namespaces

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("topo", ["sg-single", "sg-two-hv"])
def test_runner_reachability(topo):
    proc = subprocess.run([sys.executable, str(REPO / "mininet" / "run.py"), "--topo", topo],
                          capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "All 100 probes agree with the expectation." in out
    assert "denied by web: deny egress tcp/25" in out        # names the deciding rule
    where = re.search(r"private namespace (\S+), files in (\S+)", out)
    assert where, out
    ns, directory = where.groups()
    assert ns not in list_netns()
    assert not Path(directory).exists()
