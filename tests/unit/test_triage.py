"""Triage labels keyed by fingerprint (mmioscan/gate/triage.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmioscan.gate.compare import GateOptions, compare
from mmioscan.gate.policy import load_policy
from mmioscan.gate.triage import TriageError, load, template, unlabelled
from tests.unit.gate_sites import fake_scan, make_site

UNSUPPORTED = make_site(callee="__iowrite32_copy", tdx="unsupported")
OTHER = make_site(line=20, function="bar", callee="__iowrite32_copy", tdx="unsupported")


def _toml(tmp_path: Path, label: str, site: object = UNSUPPORTED) -> Path:
    path = tmp_path / "triage.toml"
    fp = site.fingerprint  # type: ignore[attr-defined]
    path.write_text(f'version = 1\n[findings.{fp}]\nlabel = "{label}"\n'
                    'comment = "checked by hand"\n')
    return path


def test_toml_and_json_files(tmp_path: Path) -> None:
    triage = load(_toml(tmp_path, "concern"))
    assert triage.label_of(UNSUPPORTED) == "concern"
    assert triage.comment_of(UNSUPPORTED) == "checked by hand"
    assert triage.label_of(OTHER) is None
    path = tmp_path / "triage.json"
    path.write_text(json.dumps({"version": 1, "findings": {
        UNSUPPORTED.fingerprint: {"label": "safe", "comment": "", "path": "x"}}}))
    assert load(path).suppresses(UNSUPPORTED)


@pytest.mark.parametrize(("label", "blocking"), [
    ("safe", False), ("excluded", False), ("concern", True), ("wrapper", True),
    ("trusted", True)])
def test_safe_and_excluded_keep_a_finding_out_of_the_gate(tmp_path: Path, label: str,
                                                           blocking: bool) -> None:
    options = GateOptions(load_policy(), fake_scan, triage=load(_toml(tmp_path, label)))
    out = compare((), [UNSUPPORTED], options)
    assert out[0].state == "new" and out[0].triage == label
    assert out[0].blocking is blocking


def test_unlabelled_and_the_template_round_trip(tmp_path: Path) -> None:
    triage = load(_toml(tmp_path, "safe"))
    todo = unlabelled([OTHER, UNSUPPORTED, make_site(tdx="paravirt")], triage)
    assert todo == [(OTHER, "unsupported-mmio")]
    path = tmp_path / "todo.toml"
    path.write_text(template(todo))
    again = load(path)
    assert again.label_of(OTHER) is None  # empty labels are still to be decided
    assert unlabelled([OTHER], again) == todo


@pytest.mark.parametrize(("text", "message"), [
    ("[findings.abc]\nlabel = 'fine'\n", "not one of"),
    ("findings = 3\n", "must map"),
    ("version = 2\n", "version 1"),
    ("[findings\n", "not valid TOML"),
    ("[findings.abc]\nlabel = 'safe'\ncomment = 1\n", "comment"),
])
def test_malformed_triage_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TriageError, match=message):
        load(path)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("t.toml", "version = " + "1" * 5000 + "\n", "more than 4,300 digits"),
    ("t.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    ("t.toml", "x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n", "nested too deeply"),
    ("t.json", '{"version": ' + "1" * 5000 + "}", "more than 4,300 digits"),
    ("t.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("t.json", b"\xff{}", "not UTF-8"),
], ids=["toml-huge-number", "toml-deep-arrays", "toml-deep-tables", "json-huge-number",
        "json-deep-arrays", "json-not-utf8"])
def test_triage_files_the_parsers_refuse(tmp_path: Path, name: str, text: str | bytes,
                                         message: str) -> None:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(TriageError, match=message) as info:
        load(path)
    assert "\n" not in str(info.value)


def test_a_fingerprint_with_a_line_break_keeps_the_message_one_line(tmp_path: Path) -> None:
    # found by tests/unit/test_fuzz_gate_inputs.py
    path = tmp_path / "t.json"
    path.write_text('{"findings": {"a\\nb": {"label": "bogus"}}}')
    with pytest.raises(TriageError, match="'a\\\\nb': label 'bogus'") as info:
        load(path)
    assert "\n" not in str(info.value)
