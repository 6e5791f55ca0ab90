"""The security-group database: an OVSDB schema of our own, served by ovsdb-server
(standalone or a Raft cluster), accessed only through ovsdbapp.

- `sg_ofctl.ovsschema`  the schema
- `server`    start/stop/status of ovsdb-server processes (no ovsdbapp import)
- `api`       connect(); the ovsdbapp API with commands; reads
- `commands`  the write commands (groups, rules, ports)
- `apply`     the declarative apply of a whole desired state
- `convert`   rows <-> model values; `read_state()` for agents
"""

from sg_ofctl.ovsdb import fastjson as _fastjson

# Before anything here imports python-ovs (ovsdbapp does): see fastjson.
_fastjson.import_ovs_without_eventlet()
