#!/bin/bash
# Runs devstack/settings and each plugin.sh phase the way stack.sh, unstack.sh
# and clean.sh do, against DevStack's real functions when DEVSTACK_DIR is set,
# else against tests/devstack/standin.sh.  Usage: run_phases.sh PHASE...
# (PHASE: "stack:install", "stack:post-config", "stack:extra", "unstack", "clean").
set -e
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export TOP_DIR=${TOP_DIR:-$WORK}
DEST=$WORK/opt
mkdir -p "$DEST"
ln -sfn "$repo" "$DEST/sg-ofctl"
NEUTRON_CORE_PLUGIN_CONF=${NEUTRON_CORE_PLUGIN_CONF#/}
ENABLED_SERVICES=${ENABLED_SERVICES:-q-svc,q-agt}
if [[ -n "${DEVSTACK_DIR:-}" ]]; then
    source "$DEVSTACK_DIR/functions-common"
    source "$DEVSTACK_DIR/inc/ini-config"
    function setup_develop { echo "setup_develop $*" >> "$CALLS"; }
    function pip_uninstall { echo "pip_uninstall $*" >> "$CALLS"; }
    function sudo { echo "sudo $*" >> "$CALLS"; }
    function define_plugin { echo "define_plugin $*" >> "$CALLS"; }
    function plugin_requires { echo "plugin_requires $*" >> "$CALLS"; }
    # stack.sh defines it, not functions-common.
    function echo_summary { echo "$@"; }
else
    source "$here/standin.sh"
fi
source "$repo/devstack/settings"
for phase in "$@"; do
    mode=${phase%%:*}
    step=${phase#*:}
    [[ "$step" == "$phase" ]] && step=""
    source "$repo/devstack/plugin.sh" "$mode" "$step"
done
