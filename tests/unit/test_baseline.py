"""Baselines (mmioscan/gate/baseline.py) and the gate's use of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmioscan.gate.baseline import BaselineError, dumps, from_sites, load
from mmioscan.gate.compare import GateOptions, compare
from mmioscan.gate.policy import load_policy
from tests.unit.gate_sites import fake_scan, make_site, result_of


def test_round_trip(tmp_path: Path) -> None:
    sites = [make_site(line=3), make_site(line=9, callee="__iowrite32_copy", tdx="unsupported"),
             make_site(line=12, tdx="paravirt")]  # paravirt: no finding
    baseline = from_sites(result_of(sites), sites)
    assert len(baseline.entries) == 2
    path = tmp_path / "b.json"
    path.write_text(dumps(baseline))
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["created_from"]["kernel_version"] == "6.12.0"
    assert set(data["findings"][0]) == {"fingerprint", "class", "path", "function", "callee",
                                        "count"}
    assert load(path) == baseline


def _options(baseline_sites: list[object]) -> GateOptions:
    sites = [s for s in baseline_sites]
    baseline = from_sites(result_of(sites), sites)  # type: ignore[arg-type]
    return GateOptions(load_policy(), fake_scan, baseline=baseline)


def test_baselined_findings_are_unchanged_and_others_new() -> None:
    old = make_site(callee="__iowrite32_copy", tdx="unsupported")
    fresh = make_site(line=40, function="bar", callee="__iowrite32_copy", tdx="unsupported")
    out = compare((), [old, fresh], _options([old]))
    states = {(f.site.function, f.state, f.baselined) for f in out}
    assert states == {("foo", "unchanged", True), ("bar", "new", False)}


def test_a_new_copy_of_a_baselined_finding_still_counts(tmp_path: Path) -> None:
    """Same line text in the same function: the copy gets occurrence 1, another fingerprint."""
    drv = tmp_path / "drivers" / "foo"
    drv.mkdir(parents=True)
    line = "\t__iowrite32_copy(dst, src, 4);\n"
    (drv / "foo.c").write_text("void foo_copy(void)\n{\n" + line + "}\n")
    before = fake_scan(tmp_path, ("drivers/foo",))
    options = _options(list(before.sites))
    (drv / "foo.c").write_text("void foo_copy(void)\n{\n" + line + line + "}\n")
    after = fake_scan(tmp_path, ("drivers/foo",))
    out = compare((), after.sites, options)
    assert [f.state for f in out] == ["new", "unchanged"]
    assert out[0].blocking and out[0].site.line == 4
    assert out[0].site.fingerprint != out[1].site.fingerprint


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not a JSON baseline"),
    ('{"version": 7}', "version 1"),
    ('{"version": 1, "findings": {}}', "findings"),
    ('{"version": 1, "findings": [{"fingerprint": ""}]}', "fingerprint"),
    ('{"version": 1, "findings": [{"fingerprint": "a", "count": 0}]}', "count"),
])
def test_malformed_baselines(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(BaselineError, match=message):
        load(path)


@pytest.mark.parametrize(("text", "message"), [
    # json.loads raises ValueError (Python's int-str limit) and RecursionError, not only
    # JSONDecodeError: both are a malformed baseline, not a crash.
    ('{"version": 1, "findings": [{"fingerprint": "a", "count": ' + "1" * 5000 + "}]}",
     "more than 4,300 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"findings": [' * 50_000 + "]}" * 50_000, "nested too deeply"),
    (b"\xff\xfe{}", "not UTF-8"),
], ids=["huge-number", "deep-arrays", "deep-objects", "not-utf8"])
def test_baselines_the_json_parser_refuses(tmp_path: Path, text: str | bytes,
                                           message: str) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BaselineError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: not a JSON baseline") and \
        "\n" not in str(info.value)


def test_version_may_be_left_out_as_in_a_triage_file(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"created_from": {}, "findings": [{"fingerprint": "a", "count": 2}]}')
    assert load(path).counts() == {"a": 2}
    path.write_text('{"version": 2, "findings": []}')
    with pytest.raises(BaselineError, match="version 1"):
        load(path)
