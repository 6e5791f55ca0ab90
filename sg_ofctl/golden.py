"""Golden flow dumps: named scenarios in flows/scenarios/NAME.yaml (a host
view) and their expected flows in NAME.flows (ovs-ofctl syntax, table names).

    python -m sg_ofctl.golden            # regenerate every NAME.flows
    python -m sg_ofctl.golden --check    # exit 1 if any is stale
"""
from __future__ import annotations

import pathlib
import sys

import yaml

from sg_ofctl.compiler import compile_host, format_flow
from sg_ofctl.model import HostView, Port, ValidationError, build_groups, host_view

SCENARIO_DIR = pathlib.Path(__file__).resolve().parent.parent / "flows" / "scenarios"
VIEW_KEYS = {"description", "uplinks", "groups", "ports", "members"}


def load_view(path: pathlib.Path) -> HostView:
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - VIEW_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ValidationError(key, data[key], f"unknown key in {path.name}")
    ports = tuple(Port(**{**p, "fixed_ips": tuple(p.get("fixed_ips", ())),
                          "security_groups": tuple(p.get("security_groups", ())),
                          "allowed_address_pairs": tuple(p.get("allowed_address_pairs", ()))})
                  for p in data.get("ports", []))
    return host_view(ports, build_groups(data.get("groups", [])).values(),
                     data.get("members") or {}, data.get("uplinks", ()))


def render(view: HostView) -> str:
    return "".join(format_flow(f) + "\n" for f in compile_host(view))


def scenarios() -> list[pathlib.Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = []
    for path in scenarios():
        expected = path.with_suffix(".flows")
        text = render(load_view(path))
        if "--check" in argv:
            if not expected.exists() or expected.read_text() != text:
                stale.append(expected.name)
        else:
            expected.write_text(text)
            print(f"wrote {expected} ({text.count(chr(10))} flows)")
    if stale:
        print(f"stale golden dumps: {', '.join(stale)} (run python -m sg_ofctl.golden)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
