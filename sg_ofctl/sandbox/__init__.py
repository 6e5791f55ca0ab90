"""A private, complete sg-ofctl installation to watch security groups work on real
traffic (docs/SANDBOX.md), and the pieces the Mininet runner and the functional
tests share with it.

- core.py       the sandbox: start (each step printed), matrix, status, stop
- __main__.py   its command line (`./sg-ofctl-sandbox` runs it)
- ledger.py     what a sandbox created (state.json), and its removal
- ovs.py        a private ovsdb-server + ovs-vswitchd (userspace) in a namespace
- matrix.py     the reachability matrix: expected (sg_ofctl.reference) vs. observed
- nethelper.py  traffic tools run inside a VM: echo servers, probes, ping, raw frames
- proc.py       run a command; stop a process by pid
"""
