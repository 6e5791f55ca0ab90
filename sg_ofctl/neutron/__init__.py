"""The neutron-openvswitch-agent's firewall driver (`firewall_driver = sg_ofctl`).

- translate.py  Neutron's port, rule and member dicts -> the model (pure, no neutron).
- channel.py    one atomic bundle per batch: the agent's os-ken connection, or ovs-ofctl.
- firewall.py   SgOfctlFirewallDriver, the driver API (imports neutron: the optional
                extra `sg-ofctl[neutron]`).
"""
