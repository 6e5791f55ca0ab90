"""The dataplane: compiler flows onto a real Open vSwitch bridge.

- render.py   Flow <-> OpenFlow 1.3 + Nicira messages (flow_mod, parse_flow_stats,
              ofctl_text); pure apart from os-ken's message classes.
- switch.py   SwitchConnection(datapath): apply(FlowDiff) as one atomic bundle,
              read_flows(), install_full(desired), conntrack flush (NXT_CT_FLUSH[_ZONE]).
- app.py      DataplaneApp, the os-ken app that keeps one SwitchConnection per bridge.
- tables.py   name the pipeline's tables in OVS (ovs-vsctl arguments or ovsdbapp).
- driver.py   a controller process driven over a unix socket (functional tests).
- flowjson.py Flow values <-> JSON.
"""
