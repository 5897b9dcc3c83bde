"""Shared helpers for the unit tests: the fixture tree, running the CLI, reading expectations."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mmioscan.cli import commands
from mmioscan.cli.main import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TREE = FIXTURES / "tree"

# `/* expect: KIND NAME [ACCESS] [fn=FUNCTION] */` on the line of the site, or
# `/* expect@+N: ... */` for the line N lines further down (inside macros), or
# `/* expect-inactive: KIND NAME [ACCESS] */` for a site in an `#if 0` block.
_EXPECT_RE = re.compile(r"/\*\s*expect(?P<tag>-inactive)?(?:@\+(?P<off>\d+))?:(?P<body>[^*]*)\*/")

SITE_KEYS = frozenset({"path", "line", "column", "function", "callee", "accessor", "kind",
                       "access", "width", "family", "active"})
CONTRACT_KEYS = frozenset({"schema_version", "tool", "root", "kernel_version", "stats", "sites",
                           "drivers", "problems"})


@dataclass(frozen=True)
class Expect:
    line: int
    kind: str
    accessor: str
    access: str | None
    function: str | None  # None: not checked; "-": file scope (JSON null)
    active: bool

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.line, self.kind, self.accessor)


def parse_expectations(path: Path) -> list[Expect]:
    """Every expectation comment in a fixture file."""
    found: list[Expect] = []
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for m in _EXPECT_RE.finditer(text):
            words = m.group("body").split()
            assert len(words) >= 2, f"{path.name}:{lineno}: malformed expectation {m.group(0)!r}"
            kind, accessor, *rest = words
            access = None
            function = None
            for word in rest:
                if word.startswith("fn="):
                    function = word[3:]
                elif word in ("read", "write", "both"):
                    access = word
                else:
                    raise AssertionError(f"{path.name}:{lineno}: unknown word {word!r}")
            line = lineno + int(m.group("off") or 0)
            found.append(Expect(line, kind, accessor, access, function,
                                active=m.group("tag") is None))
    return found


def fixture_sources() -> list[Path]:
    """Every C file of the fixture tree (the ones the expectation test checks)."""
    return sorted(p for p in TREE.rglob("*") if p.suffix in (".c", ".h"))


def run_cli(args: list[str]) -> int:
    """main() returns the exit code, or argparse exits (--help, --version)."""
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own exit for --help and --version
        return int(exc.code or 0)


def scan_json(tmp_path: Path, *paths: Path | str, extra: tuple[str, ...] = (),
              name: str = "out.json") -> dict[str, Any]:
    """Run `mmioscan scan --format json` and return the parsed output; asserts exit 0."""
    out = tmp_path / name
    code = run_cli(["scan", *map(str, paths), "--format", "json", "-o", str(out),
                    "--no-cache", "--no-progress", *extra])
    assert code == 0, f"scan exited {code}"
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def copy_tree(dest: Path) -> Path:
    """A private, writable copy of the fixture tree."""
    shutil.copytree(TREE, dest, symlinks=True)
    return dest


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


def line_starting(text: str, needle: str) -> int:
    """The one line of a fixture's text that starts with needle (after tabs), 1-based."""
    lines = [n for n, line in enumerate(text.split("\n"), start=1)
             if line.lstrip("\t").startswith(needle)]
    assert len(lines) == 1, needle
    return lines[0]


def served_spy(monkeypatch: pytest.MonkeyPatch) -> list[commands.Served]:
    """Every command's Served from now on, to ask after the command whether it was a
    products hit (a damaged entry turns a hit into a miss while rendering)."""
    seen: list[commands.Served] = []
    real = commands._result

    def spy(*args: object, **kwargs: object) -> commands.Served:
        seen.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return seen[-1]

    monkeypatch.setattr(commands, "_result", spy)
    return seen
