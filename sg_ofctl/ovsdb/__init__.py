"""The security-group database: an OVSDB schema of our own, served by ovsdb-server
(standalone or a Raft cluster), accessed only through ovsdbapp.

- `sg_ofctl.ovsschema`  the schema
- `server`    start/stop/status of ovsdb-server processes (no ovsdbapp import)
- `tls`       key material; client remotes, listeners and Raft addresses checked
- `relay`     the agents' relay (a second ovsdb-server) and the sg-agent role
- `listeners.ovsschema`  the relay's local listener rows
- `bindings`  Port_Binding rows: which host has bound which port
- `api`       connect(); the ovsdbapp API with commands; reads
- `rows`      what every write shares: look-ups, row writers, the cross-port
              check against the rows held, the command base
- `commands`  the write commands on groups and rules; initialisation
- `port_commands`  the write commands on ports (CLI, API)
- `host_writes`    an agent's writes for its host (bindings, tag-declared rows)
- `apply`     the declarative apply of a whole desired state (a typed plan)
- `convert`   rows <-> model values; `state_from_tables()` for readers

Imports point one way: api -> apply/commands/port_commands/host_writes -> rows
-> convert.
"""

from sg_ofctl.ovsdb import fastjson as _fastjson

# Before anything here imports python-ovs (ovsdbapp does): see fastjson.
_fastjson.import_ovs_without_eventlet()
