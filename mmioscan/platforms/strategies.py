"""Strategies: which functions issue the TDVMCALL (or the platform's hypercall) directly.

A patched function covers the sites whose enclosing function, callee or chain it is
(platforms/x86/model.py `verdict`). Strategies come from rules/strategies.toml or from a
user's list of patch points (`--patch-points FILE`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmioscan.core.fileio import read_input
from mmioscan.core.rules_path import rules_dir
from mmioscan.core.toml import RuleError, read_toml

DEFAULT_STRATEGY = "upstream"


class TdxError(RuleError):
    """A strategy or patch-point file is unusable; the message is one line naming the file."""



@dataclass(frozen=True, slots=True)
class StrategyRule:
    """Funnels chosen by what they are, not by name (resolved on each scan by
    analysis/funnels.py): the fewest funnels of a group's drivers that cover `cover` of the
    sites a funnel can cover, and/or every funnel that reaches an accessor of `reaches`."""

    group: str | None  # virtio | x86 | generic; None: every group
    cover: float | None  # 0 < cover <= 1
    reaches: frozenset[str] = frozenset()  # accessor families (iomap, mmio, bulk, ...)


@dataclass(frozen=True)
class Strategy:
    """Which functions issue the TDVMCALL directly (are patched), and for which groups."""

    name: str
    description: str
    patched: frozenset[str]  # function names, or `path:function` keys of one definition
    groups: frozenset[str] | None = None  # None = all groups
    rules: tuple[StrategyRule, ...] = ()  # funnels by rule; `patched` grows when resolved



_GROUPS = frozenset({"virtio", "x86", "generic"})
PATCH_RE = re.compile(r"(?:[\w.+/-]+:)?[A-Za-z_]\w*|regmap-mmio")


def _strategy(name: str, raw: object, where: str) -> Strategy:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: [strategy.{name}] must be a table")
    description, patched, groups = raw.get("description"), raw.get("patched"), raw.get("groups")
    if not isinstance(description, str) or not description:
        raise RuleError(f"{where}: strategy {name}: `description` (text) is required")
    if not isinstance(patched, list) or not all(isinstance(p, str) for p in patched):
        raise RuleError(f"{where}: strategy {name}: `patched` must be a list of names")
    bad = [p for p in patched if not PATCH_RE.fullmatch(p)]
    if bad:
        raise RuleError(f"{where}: strategy {name}: not a function name or path:function: "
                        f"{bad[0]!r}")
    if groups is not None and (not isinstance(groups, list) or not set(groups) <= _GROUPS):
        raise RuleError(f"{where}: strategy {name}: `groups` must list virtio/x86/generic")
    unknown = set(raw) - {"description", "patched", "groups", "rule"}
    if unknown:
        raise RuleError(f"{where}: strategy {name}: unknown field {sorted(unknown)[0]!r}")
    rules = raw.get("rule", [])
    if not isinstance(rules, list):
        raise RuleError(f"{where}: strategy {name}: [[strategy.{name}.rule]] tables expected")
    return Strategy(name, description, frozenset(patched),
                    None if groups is None else frozenset(groups),
                    tuple(_rule(r, f"{where}: strategy {name}: rule #{i + 1}")
                          for i, r in enumerate(rules)))


def _rule(raw: object, where: str) -> StrategyRule:
    if not isinstance(raw, dict) or set(raw) - {"group", "cover", "reaches"} or not raw:
        raise RuleError(f"{where}: a table of group, cover and/or reaches")
    group, cover, reaches = raw.get("group"), raw.get("cover"), raw.get("reaches", [])
    if group is not None and group not in _GROUPS:
        raise RuleError(f"{where}: group must be virtio, x86 or generic")
    share: float | None = None
    if cover is not None:
        m = re.fullmatch(r"(\d{1,3}(?:\.\d+)?)%", str(cover).strip())
        if m is None or not 0 < float(m.group(1)) <= 100:
            raise RuleError(f"{where}: cover is a share such as \"90%\" (0-100%]")
        share = float(m.group(1)) / 100
    if isinstance(reaches, str):
        reaches = [reaches]
    if not isinstance(reaches, list) or not all(isinstance(r, str) for r in reaches):
        raise RuleError(f"{where}: reaches is a list of accessor families")
    if share is None and not reaches:
        raise RuleError(f"{where}: give cover, reaches or both")
    return StrategyRule(group, share, frozenset(reaches))


def load_strategies(path: Path | None = None) -> dict[str, Strategy]:
    """rules/strategies.toml: name -> Strategy; RuleError on a broken file."""
    path = path or rules_dir() / "strategies.toml"
    data, _ = read_toml(path)
    table = data.get("strategy")
    if not isinstance(table, dict) or not table:
        raise RuleError(f"{path}: no [strategy.NAME] tables")
    return {name: _strategy(name, raw, path.name) for name, raw in table.items()}


def load_patch_points(path: Path) -> Strategy:
    """A user's list of patched functions: one name (or path:function) per line, `#` starts a
    comment. TdxError (one line) when the file is unreadable, empty or holds a bad line."""
    try:
        text = read_input(path).decode("utf-8")
    except OSError as exc:
        raise TdxError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TdxError(f"{path}: not UTF-8 text") from None
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not PATCH_RE.fullmatch(entry):
            raise TdxError(f"{path}:{number}: not a function name or path:function: {entry!r}")
        names.add(entry)
    if not names:
        raise TdxError(f"{path}: no function names (one per line, # for comments)")
    return Strategy(f"patch-points:{path.name}", f"functions listed in {path}",
                    frozenset(names), None)


# -- verdicts ----------------------------------------------------------------------------------
