#!/bin/bash
# A minimal stand-in for the DevStack functions devstack/plugin.sh and
# devstack/settings call, with DevStack's semantics (inc/ini-config,
# functions-common, inc/python), for testing the plugin without DevStack.
# Calls that change the system are recorded in $CALLS instead.

function _record {
    echo "$*" >> "$CALLS"
}

function iniset {
    # iniset file section option value: set, adding the section if missing.
    python3 - "$@" <<'PY'
import configparser, sys
path, section, option, value = sys.argv[1:5]
c = configparser.RawConfigParser(strict=False)
c.optionxform = str
c.read(path)
if not c.has_section(section):
    c.add_section(section)
c.set(section, option, value)
with open(path, "w") as f:
    c.write(f)
PY
}

function inicomment {
    # inicomment file section option: the option becomes a comment (DevStack's way).
    python3 - "$@" <<'PY'
import configparser, sys
path, section, option = sys.argv[1:4]
c = configparser.RawConfigParser(strict=False, allow_no_value=True)
c.optionxform = str
c.read(path)
if c.has_option(section, option):
    value = c.get(section, option)
    c.remove_option(section, option)
    c.set(section, f"#{option} = {value}", None)
with open(path, "w") as f:
    c.write(f)
PY
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ,${ENABLED_SERVICES}, =~ ,${service}, ]] && return 0
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        is_service_enabled "$service" || ENABLED_SERVICES+=",$service"
    done
}

function define_plugin {
    _record "define_plugin $*"
}

function plugin_requires {
    _record "plugin_requires $*"
}

function echo_summary {
    echo "$@"
}

function die {
    local line=$1
    shift
    echo "ERROR line $line: $*" >&2
    exit 1
}

function setup_develop {
    _record "setup_develop $*"
}

function pip_uninstall {
    _record "pip_uninstall $*"
}

function sudo {
    _record "sudo $*"
}
