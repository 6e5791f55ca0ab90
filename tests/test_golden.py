"""Golden flow dumps in flows/scenarios/: the compiler's output is unchanged,
or the change is deliberate (regenerate with `python -m sg_ofctl.golden`)."""
import difflib

import pytest

from sg_ofctl import golden, pipeline

SCENARIOS = golden.scenarios()


def test_there_are_named_scenarios():
    assert len(SCENARIOS) >= 4


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_dump(path):
    view = golden.load_view(path)
    got = golden.render(view)
    expected = path.with_suffix(".flows").read_text()
    assert got == expected, "".join(difflib.unified_diff(
        expected.splitlines(True), got.splitlines(True), "expected", "compiled", n=1))
    assert all(f"table={t.name}," in got for t in pipeline.TABLES)


def test_golden_check_command_agrees():
    assert golden.main(["--check"]) == 0
