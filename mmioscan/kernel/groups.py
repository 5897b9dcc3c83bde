"""Driver groups (virtio, x86, generic) with their evidence, from Kconfig facts and the
path rules of rules/groups.toml (see docs/domain.md, "Driver groups")."""


from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmioscan.core.model import Group
from mmioscan.core.rules_path import rules_dir
from mmioscan.core.toml import RuleError, read_toml
from mmioscan.kernel.kconfig import (
    Expr,
    KconfigFacts,
    expr_symbols,
    expr_text,
)


@dataclass(frozen=True, slots=True)
class GroupRule:
    name: Literal["virtio", "x86"]
    symbols: frozenset[str]  # a file needing one of these (through Kconfig) is in the group
    selects: frozenset[str]  # a file whose symbol selects one of these is in the group
    paths: tuple[str, ...]  # path prefixes
    arch_only: bool  # symbols defined only under arch/<arch>/ count as group symbols


@dataclass(frozen=True)
class GroupRules:
    """rules/groups.toml: groups in decision order, then the Kconfig evaluation settings."""

    groups: tuple[GroupRule, ...]
    arch: str
    assume_off: frozenset[str]  # symbols off in any real build (COMPILE_TEST)
    depth: int  # how many levels of dependency symbols are followed
    digest: str
    # Folders built for every image by explicit `$(MAKE) $(build)=` recipes, not obj-y.
    always_built: tuple[str, ...] = ()


def _strings(table: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _group_rule(entry: object, where: str) -> GroupRule:
    if not isinstance(entry, dict):
        raise RuleError(f"{where}: expected a table")
    name = entry.get("name")
    if name not in ("virtio", "x86"):
        raise RuleError(f"{where}: name must be virtio or x86, not {name!r}")
    arch_only = entry.get("arch_only", False)
    if not isinstance(arch_only, bool):
        raise RuleError(f"{where}: arch_only must be true or false")
    return GroupRule(name, frozenset(_strings(entry, "symbols", where)),
                     frozenset(_strings(entry, "selects", where)),
                     _strings(entry, "paths", where), arch_only)


def load_group_rules(path: Path | None = None) -> GroupRules:
    """Read and validate rules/groups.toml; RuleError on any problem."""
    path = path or rules_dir() / "groups.toml"
    data, raw = read_toml(path)
    entries = data.get("group")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{path.name}: no [[group]] entries")
    groups = tuple(_group_rule(e, f"{path.name}: group #{i + 1}") for i, e in enumerate(entries))
    if len({g.name for g in groups}) != len(groups):
        raise RuleError(f"{path.name}: a group is listed twice")
    kconfig = data.get("kconfig", {})
    if not isinstance(kconfig, dict):
        raise RuleError(f"{path.name}: [kconfig] must be a table")
    arch, depth = kconfig.get("arch", "x86"), kconfig.get("depth", 2)
    if not isinstance(arch, str) or not re.fullmatch(r"[a-z0-9_]+", arch):
        raise RuleError(f"{path.name}: kconfig.arch must be an architecture folder name")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 5:
        raise RuleError(f"{path.name}: kconfig.depth must be an integer from 0 to 5")
    assume_off = frozenset(_strings(kconfig, "assume_off", f"{path.name}: [kconfig]"))
    kbuild = data.get("kbuild", {})
    if not isinstance(kbuild, dict):
        raise RuleError(f"{path.name}: [kbuild] must be a table")
    always = tuple(f.strip("/") for f in _strings(kbuild, "always_built", f"{path.name}: [kbuild]"))
    return GroupRules(groups, arch, assume_off, depth, hashlib.sha1(raw).hexdigest()[:16],
                      always)





class Grouper:
    """Decides a file's group from its Kconfig symbols and path, with the evidence in words.

    A symbol is in a group when the rules list it, when it selects a listed symbol, or when
    its direct dependency cannot hold with the group's symbols off: `PCI && X86_64` needs
    x86, `X86 || ARM64` does not (the driver builds elsewhere too). Dependency symbols are
    followed `depth` levels (`depends on X86_PLATFORM_DEVICES`, which depends on X86), and
    COMPILE_TEST counts as off, so `depends on X86 || COMPILE_TEST` is x86-only.
    """

    def __init__(self, rules: GroupRules, facts: KconfigFacts | None) -> None:
        self.rules, self.facts = rules, facts
        self.arch_dir = f"arch/{rules.arch}/"
        self.arch_only, self.arch_local = self._arch_symbols()
        self.off: dict[str, frozenset[str]] = {
            g.name: g.symbols | (self.arch_only if g.arch_only else frozenset())
            for g in rules.groups}
        self._values: dict[tuple[str, str, int], bool | None] = {}
        self._reasons: dict[tuple[str, str, bool], str | None] = {}
        self._verdicts: dict[tuple[int, str, tuple[str, ...]], tuple[Group, str]] = {}

    def _arch_symbols(self) -> tuple[frozenset[str], frozenset[str]]:
        """Symbols defined only in arch/<arch>/ Kconfig files: those no other architecture
        defines (X86_MCE: x86-only), and those others define too (XEN, PARAVIRT: their
        dependency here is only the x86 definition's, so it proves nothing)."""
        if self.facts is None:
            return frozenset(), frozenset()
        local = {name for name, sym in self.facts.symbols.items()
                 if all(f.startswith(self.arch_dir) for f in sym.files)}
        elsewhere = local & self.facts.other_arch
        return frozenset(local - elsewhere), frozenset(elsewhere)

    def classify(self, path: str, symbols: tuple[str, ...]) -> tuple[Group, str]:
        rule_index, prefix = self._path_rule(path)
        key = (rule_index, prefix, symbols)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._classify(rule_index, prefix, symbols)
        return verdict

    def _path_rule(self, path: str) -> tuple[int, str]:
        """The first group (by index) with a path rule matching `path`, and the prefix."""
        for index, rule in enumerate(self.rules.groups):
            for prefix in rule.paths:
                if path.startswith(prefix):
                    return index, prefix
        return len(self.rules.groups), ""

    def _classify(self, rule_index: int, prefix: str,
                  symbols: tuple[str, ...]) -> tuple[Group, str]:
        for index, rule in enumerate(self.rules.groups):
            if index == rule_index:
                return rule.name, f"path rule {prefix}"
            for i, symbol in enumerate(symbols):
                # `selects` marks the module's own symbol only: REMOTEPROC selects VIRTIO,
                # which does not make every remote-processor driver below it virtio.
                reason = self.reason(rule, symbol, selects=i == 0)
                if reason:
                    return rule.name, reason
        return "generic", self._generic_reason(symbols)

    def reason(self, rule: GroupRule, symbol: str, selects: bool = True) -> str | None:
        key = (rule.name, symbol, selects)
        if key not in self._reasons:
            self._reasons[key] = self._reason(rule, symbol, selects)
        return self._reasons[key]

    def _reason(self, rule: GroupRule, symbol: str, selects: bool) -> str | None:
        if symbol in rule.symbols:
            return f"Kconfig {symbol}: a {rule.name} symbol (rules/groups.toml)"
        sym = self.facts.symbols.get(symbol) if self.facts else None
        if sym is None:
            return None
        if rule.arch_only and symbol in self.arch_only:
            return f"Kconfig {symbol}: defined only in {sym.files[0]} (no other architecture)"
        selected = next((s for s in sym.selects if s in rule.selects), None) if selects \
            else None
        if selected:
            return f"Kconfig {symbol}: selects {selected}"
        if symbol not in self.arch_local and self._requires(sym.dep, rule):
            return f"Kconfig {symbol}: depends on {expr_text(sym.dep)}{self._why(sym.dep, rule)}"
        return None

    def _requires(self, dep: Expr, rule: GroupRule) -> bool:
        """The dependency fails with the group's symbols off, and only then."""
        return (self._eval(dep, rule.name, self.rules.depth) is False
                and self._eval(dep, "", self.rules.depth) is not False)

    def _why(self, dep: Expr, rule: GroupRule, depth: int | None = None) -> str:
        """The chain of dependency symbols that carries the requirement, when the group's
        symbol is not in plain view: " (INTEL_MEI_ME: depends on INTEL_MEI; INTEL_MEI:
        depends on X86 && PCI)"."""
        depth = self.rules.depth if depth is None else depth
        off = self.off[rule.name]
        names = expr_symbols(dep)
        direct = next((n for n in names if n in rule.symbols), None) or \
            next((n for n in names if n in off), None)
        if direct is not None:
            return "" if direct in rule.symbols else f" ({direct} exists only on {rule.name})"
        for name in names:
            sym = self.facts.symbols.get(name) if self.facts else None
            if sym and depth > 0 and self._value(name, rule.name, depth) is False:
                inner = self._why(sym.dep, rule, depth - 1)
                step = f"{name}: depends on {expr_text(sym.dep)}"
                return f" ({step}; {inner[2:-1]})" if inner else f" ({step})"
        return ""

    def _eval(self, expr: Expr, group: str, depth: int) -> bool | None:
        """Three-valued: False when `expr` cannot hold with `group`'s symbols off, True when
        it must, None when it depends on other symbols."""
        if isinstance(expr, str):
            return self._value(expr, group, depth)
        op = expr[0]
        if op == "const":
            return {"y": True, "m": True, "n": False}.get(expr[1])
        if op == "!":
            inner = self._eval(expr[1], group, depth)
            return None if inner is None else not inner
        if op == "cmp":
            return None
        left, right = self._eval(expr[1], group, depth), self._eval(expr[2], group, depth)
        if op == "&&":
            return False if False in (left, right) else (True if left and right else None)
        return True if True in (left, right) else (False if left is right is False else None)

    def _value(self, symbol: str, group: str, depth: int) -> bool | None:
        if group and symbol in self.off[group] or symbol in self.rules.assume_off:
            return False
        key = (symbol, group, depth)
        if key not in self._values:
            self._values[key] = None  # a dependency loop reads as unknown
            sym = self.facts.symbols.get(symbol) if self.facts else None
            # A symbol whose own dependency cannot hold is off too (undefined ones are
            # unknown: they may exist on other architectures).
            if sym is not None and depth > 0 and symbol not in self.arch_local \
                    and self._eval(sym.dep, group, depth - 1) is False:
                self._values[key] = False
        return self._values[key]

    def _generic_reason(self, symbols: tuple[str, ...]) -> str:
        groups = " or ".join(g.name for g in reversed(self.rules.groups))
        if not symbols:
            return "no Kconfig symbol and no path rule"
        symbol = symbols[0]
        if self.facts is None:
            return f"no path rule (Kconfig unavailable; symbol {symbol})"
        sym = self.facts.symbols.get(symbol)
        if sym is None:
            return f"no {groups} dependency (Kconfig {symbol}: not defined for " \
                   f"{self.rules.arch})"
        dep = "no dependencies" if sym.dep == ("const", "y") else \
            f"depends on {expr_text(sym.dep)}"
        if symbol in self.arch_local:
            dep += f"; other architectures define {symbol} too"
        return f"no {groups} dependency (Kconfig {symbol}: {dep})"


