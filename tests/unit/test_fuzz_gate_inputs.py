"""Fuzzing the gate's readers: patches, baselines, triage files, policies.

Each reader gets random text, random bytes and mutated valid files (Hypothesis, a bounded
number of examples, no deadline). Whatever the input, the only exception allowed is the
reader's documented input error (PatchError, BaselineError, TriageError, PolicyError), which
the command line turns into one line on stderr and exit 2; its message is one line. Anything
else (ValueError, RecursionError, KeyError, TypeError...) would be a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmioscan.gate import baseline, patchfile, policy, triage
from mmioscan.gate.patchfile import PatchError

EXAMPLES = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
# Generating nested JSON is the slow part: fewer examples keep the file near 20 s.
SHAPES = settings(EXAMPLES, max_examples=150)

FOO_C = "".join(f"line {i}\n" for i in range(1, 13))
PATCH = """\
From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001
From: A Developer <dev@example.org>
Subject: [PATCH] foo: one more line

diff --git a/drivers/foo/foo.c b/drivers/foo/foo.c
index 1111111..2222222 100644
--- a/drivers/foo/foo.c
+++ b/drivers/foo/foo.c
@@ -2,6 +2,7 @@
 line 2
 line 3
 line 4
+added
 line 5
 line 6
 line 7
diff --git "a/drivers/foo/f\\303\\266o.h" "b/drivers/foo/f\\303\\266o.h"
new file mode 100644
--- /dev/null
+++ "b/drivers/foo/f\\303\\266o.h"
@@ -0,0 +1,2 @@
+#define FOO 1
+#define BAR 2
\\ No newline at end of file
diff --git a/drivers/foo/old.c b/drivers/foo/new.c
similarity index 90%
rename from drivers/foo/old.c
rename to drivers/foo/new.c
--
2.39.5
"""
BASELINE = json.dumps({
    "version": 1, "tool": {"name": "mmioscan", "version": "0.1.0"},
    "created_from": {"root": "/src/linux", "kernel_version": "6.12.0", "scanned": ["drivers"]},
    "findings": [{"fingerprint": "988bc4a182c45ec97075738e109ed1a5", "class": "ve-mmio",
                  "path": "drivers/foo/foo.c", "function": "foo", "callee": "readl",
                  "count": 2}]}, indent=1)
TRIAGE_TOML = """\
version = 1
[findings.988bc4a182c45ec97075738e109ed1a5]
label = "safe"
comment = "read once at probe"
path = "drivers/foo/foo.c"
function = "foo_probe"

[findings."a b"]
label = ""
"""
TRIAGE_JSON = json.dumps({"version": 1, "findings": {
    "988bc4a182c45ec97075738e109ed1a5": {"label": "concern", "comment": "x", "path": "p"}}})
POLICY = (Path(__file__).resolve().parents[2] / "rules" / "policy.toml").read_text()

# What breaks parsers: huge numbers, deep nesting, NULs, quotes, escapes, patch syntax.
TOKENS = ["9" * 5000, "1" * 4400, "\0", "\\", '"', "'", "\\377", "\\000", "\n", "\r", "\t",
          "[" * 2000, "{" * 2000, "[[", "]]", "{a = ", "}", "= ", ",", ":", "inf", "nan",
          "-1", "0", "1e999", "true", "null", "@@ -1 +1 @@\n", "@@ -0,0 +1,99999999999 @@\n",
          "diff --git a/x b/x\n", "--- /dev/null\n", "+++ b/x.h/y.c\n", "+", "-", " ",
          "\\ No newline at end of file\n", "From x Mon Sep 17 00:00:00 2001\n",
          "Content-Transfer-Encoding: base64\n", "rename from ", "copy to ", "/dev/null",
          "../", "/", "\udcff", "\ud800", "\\\udcff", "\u2028", "é", "\ufeff"]


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """A valid file with a few random edits: a token or random text inserted, a span cut,
    or a span replaced."""
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 40)))
        piece = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=20)))
        how = draw(st.sampled_from(("insert", "cut", "replace")))
        if how == "insert":
            text = text[:at] + piece + text[at:]
        elif how == "cut":
            text = text[:at] + text[end:]
        else:
            text = text[:at] + piece + text[end:]
    return text


def inputs(valid: str) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, and mutations of a valid file, as the bytes of a file."""
    def encode(text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")

    return st.one_of(st.binary(max_size=300), st.text(max_size=300).map(encode),
                     mutated(valid).map(encode))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@st.composite
def baseline_like(draw: st.DrawFn) -> Any:
    """JSON shaped like a baseline, with any value in any place."""
    entry = st.fixed_dictionaries({}, optional={
        k: json_values for k in ("fingerprint", "class", "path", "function", "callee",
                                 "count")})
    return draw(st.fixed_dictionaries({}, optional={
        "version": st.sampled_from([1, 2, "1", None, True, 1.0]) | json_values,
        "created_from": st.fixed_dictionaries({}, optional={
            "root": json_values, "kernel_version": json_values,
            "scanned": st.lists(st.text(max_size=5)) | json_values}) | json_values,
        "findings": st.lists(entry | json_values, max_size=4) | json_values}))


@st.composite
def triage_like(draw: st.DrawFn) -> Any:
    label = st.fixed_dictionaries({}, optional={
        "label": st.sampled_from(["safe", "excluded", "concern", "", "bogus"]) | json_values,
        "comment": json_values, "path": json_values, "function": json_values})
    return draw(st.fixed_dictionaries({}, optional={
        "version": st.sampled_from([1, 2]) | json_values,
        "findings": st.dictionaries(st.text(max_size=8), label | json_values, max_size=4)
        | json_values}))


def _one_line(exc: Exception) -> None:
    message = str(exc)
    assert message and "\n" not in message, repr(message)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ---- patches ---------------------------------------------------------------------------------


def _apply_patch(text: str) -> None:
    """Parse, resolve, apply and check, as gate --patch does, against a small tree."""
    tree = {"drivers/foo/foo.c": FOO_C.encode(), "drivers/foo/old.c": b"int old;\n"}
    try:
        patch = patchfile.parse(text, "fuzz.patch")
        changes = patchfile.resolve(patch, lambda p: p in tree)
        result = patchfile.apply(changes, tree.get)
        patchfile.check_folders(result, lambda p: p in tree)
        patchfile.touched(changes)
    except PatchError as exc:
        _one_line(exc)


def test_the_valid_patch_applies() -> None:
    patch = patchfile.parse(PATCH, "fuzz.patch")
    tree = {"drivers/foo/foo.c": FOO_C.encode(), "drivers/foo/old.c": b"int old;\n"}
    result = patchfile.apply(patchfile.resolve(patch, lambda p: p in tree), tree.get)
    assert result["drivers/foo/föo.h"] == b"#define FOO 1\n#define BAR 2"
    assert result["drivers/foo/old.c"] is None and result["drivers/foo/new.c"]


@EXAMPLES
@given(st.one_of(st.text(max_size=400), mutated(PATCH)))
def test_patch_text(text: str) -> None:
    _apply_patch(text)


@EXAMPLES
@given(st.binary(max_size=400) | mutated(PATCH).map(lambda t: t.encode("utf-8",
                                                                         "surrogatepass")))
def test_patch_bytes(data: bytes) -> None:
    # gate_patch reads the file this way: undecodable bytes become surrogates
    _apply_patch(data.decode("utf-8", "surrogateescape"))


# ---- baselines, triage files, policies -----------------------------------------------------


def _load_baseline(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        baseline.load(path)
    except baseline.BaselineError as exc:
        _one_line(exc)


@EXAMPLES
@given(inputs(BASELINE))
def test_baseline_files(folder: Path, data: bytes) -> None:
    _load_baseline(folder / "baseline.json", data)


@SHAPES
@given(baseline_like())
def test_baseline_shapes(folder: Path, value: Any) -> None:
    _load_baseline(folder / "baseline.json", json.dumps(value).encode())


def _load_triage(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        triage.load(path)
    except triage.TriageError as exc:
        _one_line(exc)


@EXAMPLES
@given(inputs(TRIAGE_TOML))
def test_triage_toml_files(folder: Path, data: bytes) -> None:
    _load_triage(folder / "triage.toml", data)


@EXAMPLES
@given(inputs(TRIAGE_JSON))
def test_triage_json_files(folder: Path, data: bytes) -> None:
    _load_triage(folder / "triage.json", data)


@SHAPES
@given(triage_like())
def test_triage_shapes(folder: Path, value: Any) -> None:
    _load_triage(folder / "triage.json", json.dumps(value).encode())


@EXAMPLES
@given(inputs(POLICY))
def test_policy_files(folder: Path, data: bytes) -> None:
    path = folder / "policy.toml"
    path.write_bytes(data)
    try:
        policy.load_policy(path)
    except policy.PolicyError as exc:
        _one_line(exc)
