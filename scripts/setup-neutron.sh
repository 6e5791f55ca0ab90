#!/usr/bin/env bash
# Installs what the Neutron integration's tests need: a separate venv
# (.venv-neutron) with Neutron from PyPI, its test libraries and sg-ofctl with the
# neutron extra, plus the tools Neutron's functional firewall tests call.
set -euo pipefail
cd "$(dirname "$0")/.."
NEUTRON_VERSION=${NEUTRON_VERSION:-29.0.0}
DEB_PACKAGES="sudo iptables arping ncat conntrack ipset"
missing=""
for pkg in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "==> apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-neutron/bin/python ]; then
  echo "==> creating .venv-neutron"
  "$PYTHON" -m venv .venv-neutron
fi
if ! .venv-neutron/bin/python -c "
import importlib.metadata as m, sys
import sg_ofctl.neutron.firewall, testscenarios, oslotest
sys.exit(m.version('neutron') != '$NEUTRON_VERSION')" 2>/dev/null; then
  echo "==> installing neutron $NEUTRON_VERSION and its test libraries into .venv-neutron (minutes)"
  .venv-neutron/bin/pip install -q --disable-pip-version-check "neutron==$NEUTRON_VERSION" \
      fixtures testtools testscenarios testresources oslotest ddt WebTest PyMySQL
  .venv-neutron/bin/pip install -q --disable-pip-version-check --no-deps -e .
fi
