"""A whole set of groups and ports keyed by name, as the declarative format and
`apply` see it: what a file wants, and what the database has.  Pure values."""
from __future__ import annotations

import dataclasses
from typing import Mapping

from sg_ofctl import model


@dataclasses.dataclass(frozen=True)
class DesiredGroup:
    group: model.SecurityGroup             # id == name; rules name remote groups by name
    external_ids: Mapping[str, str] | None = None   # None: leave as it is


@dataclasses.dataclass(frozen=True)
class DesiredPort:
    port: model.Port                       # id == name; security_groups are names
    external_ids: Mapping[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class Desired:
    groups: Mapping[str, DesiredGroup]
    ports: Mapping[str, DesiredPort]
