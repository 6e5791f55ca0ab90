#!/usr/bin/env bash
# Starts a private Open vSwitch (ovsdb-server on tcp:127.0.0.1:6640 inside its
# own network namespace, userspace ovs-vswitchd), runs Neutron's functional
# firewall tests in that namespace with .venv-neutron, stops and removes it all.
# Usage: [FW_DRIVER=module:Class] run_in_private_ovs.sh RUNDIR [test substrings...]
#        NFW_SCRIPT=contract.py run_in_private_ovs.sh RUNDIR   (the contract test)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
rundir=$1; shift
mkdir -p "$rundir/logs"
ns="sgnfw-$(basename "$rundir")-$$"
ns=${ns:0:30}
ip netns add "$ns"
cleanup() {
  for p in ovs-vswitchd ovsdb-server; do
    [ -f "$rundir/$p.pid" ] && kill "$(cat "$rundir/$p.pid")" 2>/dev/null || true
  done
  ip netns delete "$ns" 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 143" TERM INT
export OVS_RUNDIR=$rundir OVS_LOGDIR=$rundir OVS_DBDIR=$rundir
ip netns exec "$ns" ip link set lo up
ovsdb-tool create "$rundir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ip netns exec "$ns" ovsdb-server "$rundir/conf.db" --remote="punix:$rundir/db.sock" \
  --remote=ptcp:6640:127.0.0.1 --pidfile="$rundir/ovsdb-server.pid" \
  --unixctl="$rundir/ovsdb-server.ctl" --detach --log-file="$rundir/ovsdb-server.log" --no-chdir
ovs-vsctl --db="unix:$rundir/db.sock" --no-wait init
ip netns exec "$ns" ovs-vswitchd "unix:$rundir/db.sock" --pidfile="$rundir/ovs-vswitchd.pid" \
  --unixctl="$rundir/ovs-vswitchd.ctl" --detach --log-file="$rundir/ovs-vswitchd.log" --no-chdir
venv="$here/.venv-neutron"
export OS_ROOTWRAP_CMD="sudo -E env PATH=$venv/bin:$PATH"
export OS_LOG_PATH="$rundir/logs"
cd "$rundir"   # not the repo: nothing named neutron/ may shadow the package
set +e
script=${NFW_SCRIPT:-run_neutron_fw_tests.py}
[[ $script == /* ]] || script=$here/tests/neutron/$script
ip netns exec "$ns" "$venv/bin/python" "$script" "$@"
rc=$?
exit $rc
