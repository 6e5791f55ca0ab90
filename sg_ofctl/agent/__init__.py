"""The per-hypervisor agent: `sg-ofctl agent --bridge BR`.

- main.py       process: options, os-ken start, bridge setup, signals, shutdown
- ofapp.py      the os-ken app (switch connections; wakes the worker on changes)
- local_ovs.py  ovsdbapp monitor of the local Open_vSwitch database (interfaces, tags)
- sgdb.py       ovsdbapp monitor of the security-group database: only this host's rows
- sgconditions.py  which rows that is: the OVSDB monitor conditions (pure)
- sgreplica.py  the rows held -> model values, incrementally; members.py: group -> addresses
- rowview.py    fast read-only attribute access to python-ovs rows
- tags.py       the instance tags of an interface (iface-id, sg-ofctl-groups/-ips)
- view.py       local interfaces + database -> HostView (bad ports left out, fail-closed)
- revoke.py     which conntrack entries may be flushed after a change
- worker.py     the one thread that compiles, sends bundles, port-mods and ct flushes
- status.py     the status file that `sg-ofctl status` reads
"""
