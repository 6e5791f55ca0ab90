"""What both of the agent's OVSDB monitors share: a lost or regained
connection wakes the worker, so `sg-ofctl status` tells it at once."""
from __future__ import annotations

import logging

LOG = logging.getLogger(__name__)


class ConnectionWatch:
    """Mix into an ovsdbapp IDL class; `connection_changed()` is called from its
    thread whenever the session connects or disconnects."""

    _was_connected = None

    def connection_changed(self) -> None:
        raise NotImplementedError

    def run(self):
        changed = super().run()
        try:
            connected = self._session.is_connected()
            if connected != self._was_connected:
                self._was_connected = connected
                self.connection_changed()
        except Exception:
            LOG.exception("OVSDB connection state")
        return changed
