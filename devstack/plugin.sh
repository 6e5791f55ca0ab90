#!/bin/bash
# sg-ofctl DevStack plugin: sg-ofctl as the neutron-openvswitch-agent's
# firewall driver ([securitygroup] firewall_driver = sg_ofctl).
# Called by DevStack as: source plugin.sh <mode> <phase>

function install_sg_ofctl {
    # Into the environment where DevStack installs Neutron (its venv with
    # GLOBAL_VENV=True), with the neutron extra: the agent finds the driver there.
    setup_develop "$SG_OFCTL_DIR" neutron
    # The sg-ofctl CLI, for inspecting flows, on everybody's PATH.
    if [[ -n "${DEVSTACK_VENV:-}" && -x "$DEVSTACK_VENV/bin/sg-ofctl" ]]; then
        sudo ln -sf "$DEVSTACK_VENV/bin/sg-ofctl" /usr/local/bin/sg-ofctl
    fi
}

function configure_sg_ofctl {
    # After DevStack's own Neutron configuration (which set the driver to
    # openvswitch) and before neutron-openvswitch-agent starts.
    local conf=/$NEUTRON_CORE_PLUGIN_CONF
    iniset "$conf" securitygroup firewall_driver sg_ofctl
    iniset "$conf" securitygroup enable_security_group True
    iniset "$conf" sg_ofctl first_table "$SG_OFCTL_FIRST_TABLE"
    iniset "$conf" sg_ofctl audit_period "$SG_OFCTL_AUDIT_PERIOD"
    iniset "$conf" sg_ofctl log_level "$SG_OFCTL_LOG_LEVEL"
}

function check_sg_ofctl {
    # The agent's python finds the driver by its entry point name.
    local python=${DEVSTACK_VENV:+$DEVSTACK_VENV/bin/}python3
    $python -c "from neutron.agent import firewall; \
firewall.load_firewall_driver_class('sg_ofctl')" || die $LINENO "sg_ofctl driver not found"
}

function cleanup_sg_ofctl {
    local conf=/$NEUTRON_CORE_PLUGIN_CONF
    if [[ -f "$conf" ]]; then
        inicomment "$conf" sg_ofctl first_table
        inicomment "$conf" sg_ofctl audit_period
        inicomment "$conf" sg_ofctl log_level
        iniset "$conf" securitygroup firewall_driver "$SG_OFCTL_PREVIOUS_DRIVER"
    fi
    sudo rm -f /usr/local/bin/sg-ofctl
    pip_uninstall sg-ofctl
}

# Wherever the OVS agent runs (q-agt, or neutron-agent in newer DevStack).
if is_service_enabled q-agt neutron-agent; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing sg-ofctl"
        install_sg_ofctl
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring sg-ofctl as the OVS agent's firewall driver"
        configure_sg_ofctl
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        check_sg_ofctl
    fi
    if [[ "$1" == "unstack" ]]; then
        # Nothing of ours runs outside neutron-openvswitch-agent, which
        # DevStack stops; its flows go with br-int.
        :
    fi
    if [[ "$1" == "clean" ]]; then
        cleanup_sg_ofctl
    fi
fi
