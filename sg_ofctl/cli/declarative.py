"""`sg-ofctl apply FILE|-` and `sg-ofctl export`: the whole desired state as YAML
(docs/FORMAT.md)."""
from __future__ import annotations

import sys

from sg_ofctl.cli import common

ALL = ("Global", "Security_Group", "Security_Group_Rule", "Port")


def register(sub) -> None:
    apply = sub.add_parser("apply", help="make the database match a YAML file",
                           description="Apply the whole desired set of groups, rules and "
                                       "ports in one transaction; what the file leaves out "
                                       "is deleted (except the default group).")
    apply.add_argument("file", metavar="FILE", help="YAML file, or - for stdin")
    apply.add_argument("--dry-run", action="store_true", help="print the changes only")
    apply.set_defaults(func=_apply)
    export = sub.add_parser("export", help="write the current state as YAML")
    export.add_argument("-o", "--output", metavar="FILE", help="default stdout")
    export.set_defaults(func=_export)


def _read(path: str) -> tuple[str, str]:
    from sg_ofctl import safeyaml
    return safeyaml.read(path)


def _apply(args):
    from sg_ofctl import desired
    text, source = _read(args.file)
    want = desired.load(text, source)
    with common.connect(args, ALL) as api:
        changes = api.run(api.apply(want, dry_run=args.dry_run))
    for change in changes:     # the typed plan that apply writes, as it is written
        print(change.text())
    if not changes:
        print("No changes: the database already matches the file.")
    elif args.dry_run:
        print(f"{len(changes)} change(s) would be made (dry run: nothing changed).")
    else:
        print(f"{len(changes)} change(s) applied.")


def _export(args):
    from sg_ofctl import desired
    from sg_ofctl.ovsdb import apply as apply_mod
    with common.connect(args, ALL, read_only=True) as api:
        text = desired.dump(api.read(apply_mod.current))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
