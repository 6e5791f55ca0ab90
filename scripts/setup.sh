#!/usr/bin/env bash
# Installs what sg-ofctl and its tests need on a fresh Debian machine:
# Debian packages (Open vSwitch, iproute2, ...) and a venv with the package.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB_PACKAGES="openvswitch-switch openvswitch-common iproute2 ethtool iperf3 iputils-ping procps mininet python3-venv"
missing=""
for pkg in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "sg-ofctl setup: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
  fi
  echo "==> apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
# Reinstall whenever the package's requirements change (setup.cfg), not only
# when an import fails: a venv made before a new dependency would miss it.
stamp=".venv/.sg-ofctl-setup.cfg.sha256"
want=$(sha256sum setup.cfg | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
    || ! .venv/bin/python -c "import sg_ofctl, pytest, hypothesis, os_ken, ovsdbapp, mypy" 2>/dev/null \
    || [ ! -x .venv/bin/ruff ]; then
  echo "==> installing sg-ofctl and test dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
fi
