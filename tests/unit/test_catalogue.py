"""catalogue.load_catalogue: the shipped rules load; broken rules files raise RuleError."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.core.catalogue import Accessor, RuleError, load_catalogue

from .helpers import TREE, has_traceback, run_cli

READL = """[[accessor]]
name = "readl"
family = "mmio"
access = "read"
width = 32
ordering = "ordered"
endian = "le"
header = "arch/x86/include/asm/io.h"
addr_arg = 0
"""

POLL = """[[accessor]]
name = "readl_poll_timeout"
family = "poll"
access = "read"
width = 32
header = "include/linux/iopoll.h"
addr_arg = 0
reaches = "readl"
"""


def _write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_catalogue_loads() -> None:
    cat = load_catalogue()
    assert len(cat.names()) > 100
    readl = cat.get("readl")
    assert isinstance(readl, Accessor)
    assert (readl.family, readl.access, readl.width) == ("mmio", "read", 32)
    assert cat.get("outb") is not None and cat.get("outb").family == "pio"  # type: ignore[union-attr]
    assert cat.get("ioremap") is None
    assert cat.get("no_such_accessor") is None
    assert len(cat.digest) >= 8


def test_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    cat = load_catalogue(_write(tmp_path, READL + POLL))
    assert cat.names() == frozenset({"readl", "readl_poll_timeout"})
    poll = cat.get("readl_poll_timeout")
    assert poll is not None
    assert poll.reaches == ("readl",)
    assert (poll.ordering, poll.endian, poll.accesses) == ("ordered", "le", 1)


def test_digest_follows_the_text(tmp_path: Path) -> None:
    a = load_catalogue(_write(tmp_path, READL, "a.toml"))
    b = load_catalogue(_write(tmp_path, READL + "\n# a comment\n", "b.toml"))
    c = load_catalogue(_write(tmp_path, READL, "c.toml"))
    assert a.digest == c.digest
    assert a.digest != b.digest


BROKEN = {
    "not_toml": READL + "\nname = = broken\n",
    "not_toml_table": "[[accessor]\nname = \"readl\"\n",
    "missing_family": READL.replace('family = "mmio"\n', ""),
    "missing_name": READL.replace('name = "readl"\n', ""),
    "missing_width": READL.replace("width = 32\n", ""),
    "missing_header": READL.replace('header = "arch/x86/include/asm/io.h"\n', ""),
    "unknown_family": READL.replace('family = "mmio"', 'family = "dma"'),
    "bad_access": READL.replace('access = "read"', 'access = "readwrite"'),
    "bad_width": READL.replace("width = 32", "width = 24"),
    "width_not_a_number": READL.replace("width = 32", 'width = "wide"'),
    "duplicate_name": READL + READL,
    "unknown_reach": POLL,
    "no_entries": "# nothing here\n",
    "wrong_top_level": "accessor = 3\n",
    "entry_not_a_table": "accessor = [1, 2]\n",
    # What tomllib raises besides TOMLDecodeError: ValueError (int-str limit), RecursionError.
    "huge_number": READL.replace("addr_arg = 0", "addr_arg = " + "1" * 5000),
    "deep_nesting": READL + "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep_inline_tables": READL + "x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n",
    "width_infinite": READL.replace("width = 32", "width = inf"),
    "reaches_not_names": READL + "reaches = [[1]]\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_rules_raise_rule_error(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, BROKEN[case])
    with pytest.raises(RuleError) as info:
        load_catalogue(path)
    message = str(info.value)
    assert "rules.toml" in message
    assert "\n" not in message


def test_messages_name_the_problem(tmp_path: Path) -> None:
    def message(case: str) -> str:
        with pytest.raises(RuleError) as info:
            load_catalogue(_write(tmp_path, BROKEN[case]))
        return str(info.value)

    assert "family" in message("missing_family")
    assert "dma" in message("unknown_family")
    assert "readl" in message("duplicate_name")
    assert "TOML" in message("not_toml")


def test_not_utf8_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(READL.encode() + b"# \xff\xfe\n")
    with pytest.raises(RuleError):
        load_catalogue(path)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_catalogue(tmp_path / "absent.toml")


def test_rules_path_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(RuleError):
        load_catalogue(tmp_path)


@pytest.mark.parametrize("case", ["not_toml", "missing_family", "unknown_family",
                                  "duplicate_name", "huge_number", "deep_nesting",
                                  "width_infinite"])
def test_cli_bad_rules_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            case: str) -> None:
    rules = _write(tmp_path, BROKEN[case])
    code = run_cli(["scan", str(TREE / "drivers/bar"), "--rules", str(rules), "--no-cache",
                    "--no-progress", "--format", "json", "-o", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mmioscan: error:")
    assert not has_traceback(err)
    assert not (tmp_path / "out.json").exists()


def test_cli_missing_rules_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["scan", str(TREE / "drivers/bar"), "--rules", str(tmp_path / "nope.toml"),
                    "--no-cache", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("mmioscan: error:")


def test_cli_custom_rules_limit_the_sites(tmp_path: Path) -> None:
    """With a catalogue of readl only, every site is a readl site."""
    import json

    rules = _write(tmp_path, READL)
    out = tmp_path / "out.json"
    code = run_cli(["scan", str(TREE), "--rules", str(rules), "--no-cache", "--no-progress",
                    "--format", "json", "-o", str(out)])
    assert code == 0
    sites = json.loads(out.read_text())["sites"]
    # regmap sites come from rules/regmap.toml, not from the accessor catalogue; raw __iomem
    # dereferences reach no accessor
    assert sites and {s["accessor"] for s in sites
                      if s["kind"] not in ("regmap", "deref")} == {"readl"}


def test_cli_error_messages_quoting_a_line_break_stay_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main() prints every input error on one line, whatever name the message quotes."""
    rules = _write(tmp_path, READL + 'reaches = ["no\\nsuch"]\n')
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--rules", str(rules), "--no-cache",
                    "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmioscan: error:") and err.count("\n") == 1, err
    assert "reaches unknown no such" in err
