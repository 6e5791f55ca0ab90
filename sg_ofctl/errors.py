"""Errors a user can cause, shown as one line by the command line.

`model.ValidationError` (a bad field value) is the other kind; both name what
was wrong.  No imports beyond the standard library.
"""


class UserError(Exception):
    """A request that cannot be done as asked; nothing was changed."""


class NotFound(UserError):
    """No group, rule or port by that name or id."""


class Conflict(UserError):
    """The request clashes with what the database holds (in use, duplicate...)."""


class PermissionDenied(UserError):
    """The database's roles (OVSDB RBAC) refuse this write to this client."""


class DatabaseUnavailable(UserError):
    """The security-group database did not answer in time."""
