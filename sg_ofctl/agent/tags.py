"""Instance tags on an Interface row's `external_ids`.

    iface-id          the logical port (= the Port row's `name` in the SG database)
    attached-mac      the instance's MAC
    sg-ofctl-groups   web,db        groups (names or ids) of a port no API created
    sg-ofctl-ips      10.0.0.5,fd00::5

The database row wins when it exists; the tags only create a missing row (and
keep a row the agent created from tags in step with them).  A bad tag is a
TagError naming the interface, the key and the value; the port then stays
fail-closed."""
from __future__ import annotations

from dataclasses import dataclass

from sg_ofctl import model, safetext

IFACE_ID, ATTACHED_MAC = "iface-id", "attached-mac"
GROUPS_KEY, IPS_KEY = "sg-ofctl-groups", "sg-ofctl-ips"
# external_ids of a Port row the agent created from tags
CREATED_BY, TAGS_APPLIED = "sg-ofctl-created-by", "sg-ofctl-tags"


class TagError(ValueError):
    def __init__(self, interface: str, key: str, value, reason: str):
        self.interface, self.key, self.value, self.reason = interface, key, value, reason
        super().__init__(f"interface {safetext.shown(interface)}: external_ids:"
                         f"{safetext.shown(key)}={safetext.quote(value)}: {reason}")


@dataclass(frozen=True)
class Declared:
    """What the tags declare for a port that no API created."""

    name: str
    mac: str
    ips: tuple[str, ...]
    groups: tuple[str, ...]   # as written (names or ids)

    def text(self) -> str:
        """A fingerprint stored on the created row: the tags it was made from."""
        return f"{self.mac}|{','.join(self.ips)}|{','.join(self.groups)}"


def split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def declared(interface: str, external_ids: dict, group_ids: dict) -> Declared | None:
    """The declaration of an interface's tags, None if it has none (no
    sg-ofctl-groups/-ips), TagError if one is bad.  `group_ids` maps every
    group name and id in the database to its id."""
    name = external_ids.get(IFACE_ID)
    if not name or (GROUPS_KEY not in external_ids and IPS_KEY not in external_ids):
        return None
    mac_text = external_ids.get(ATTACHED_MAC)
    if not mac_text:
        raise TagError(interface, ATTACHED_MAC, mac_text, "missing: a tag-declared port "
                       "needs its MAC")
    try:
        mac = model.parse_mac(ATTACHED_MAC, mac_text)
    except model.ValidationError as e:
        raise TagError(interface, ATTACHED_MAC, mac_text, e.reason) from None
    ips_text = external_ids.get(IPS_KEY, "")
    ips = []
    for ip in split(ips_text):
        try:
            ips.append(model.parse_ip(IPS_KEY, ip))
        except model.ValidationError:
            raise TagError(interface, IPS_KEY, ips_text,
                           f"{safetext.quote(ip)} is not an IP address") \
                from None
    if not ips:
        raise TagError(interface, IPS_KEY, ips_text, "a tag-declared port needs at least "
                       "one IP address")
    groups_text = external_ids.get(GROUPS_KEY, "")
    groups = split(groups_text)
    for g in groups:
        if g not in group_ids:
            raise TagError(interface, GROUPS_KEY, groups_text,
                           f"no security group named {safetext.quote(g)}")
    return Declared(name, mac, tuple(ips), groups)
