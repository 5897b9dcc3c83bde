"""All rule files of rules/ loaded together: catalogue, regmap, hot-path roots."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmioscan.core.catalogue import Catalogue, RuleError, load_catalogue, read_toml
from mmioscan.core.rules_path import rules_dir

_REGMAP_ACCESS = frozenset({"read", "write", "both"})


@dataclass(frozen=True, slots=True)
class Regmap:
    init: frozenset[str]  # (devm_)regmap_init_mmio*: a driver calling one has an MMIO regmap
    api: dict[str, str]  # regmap_read -> "read", regmap_update_bits -> "both", ...


@dataclass(frozen=True, slots=True)
class HotPaths:
    registrations: dict[str, tuple[int, ...]]  # request_irq -> (1,): the handler's argument
    fields: frozenset[str]  # ndo_start_xmit, ...


@dataclass(frozen=True, slots=True)
class WrapperRules:
    max_function_lines: int  # a larger function reaching an accessor is a user, not a wrapper
    definition_macros: frozenset[str] = frozenset()  # EXPORT_SYMBOL(readl) defines, not uses
    max_funnel_lines: int = 400  # the funnel rule's safety valve: longer functions never funnel


@dataclass(frozen=True, slots=True)
class RuleSet:
    catalogue: Catalogue
    regmap: Regmap
    hot: HotPaths
    wrappers: WrapperRules
    digest: str  # of every rules file: part of the cache key


def _regmap(data: dict[str, Any], where: str) -> Regmap:
    init, api = data.get("init"), data.get("api")
    if not isinstance(init, list) or not all(isinstance(n, str) for n in init):
        raise RuleError(f"{where}: `init` must be a list of names")
    if not isinstance(api, dict) or not api:
        raise RuleError(f"{where}: `[api]` must map names to read/write/both")
    bad = sorted(n for n, a in api.items() if a not in _REGMAP_ACCESS)
    if bad:
        raise RuleError(f"{where}: access of {', '.join(bad)} must be read, write or both")
    return Regmap(frozenset(init), dict(api))


def _hot(data: dict[str, Any], where: str) -> HotPaths:
    reg, fields = data.get("registration"), data.get("fields")
    if not isinstance(reg, dict) or not isinstance(fields, dict):
        raise RuleError(f"{where}: needs [registration] and [fields] tables")
    registrations: dict[str, tuple[int, ...]] = {}
    for name, positions in reg.items():
        if not isinstance(positions, list) or not all(
                isinstance(p, int) and p >= 0 for p in positions):
            raise RuleError(f"{where}: {name} must list argument indexes (0-based)")
        registrations[name] = tuple(positions)
    return HotPaths(registrations, frozenset(fields))


def load_rules(directory: Path | None = None, accessors: Path | None = None) -> RuleSet:
    """Load and validate every rules file; RuleError names the file and the problem."""
    directory = directory or rules_dir()
    catalogue = load_catalogue(accessors or directory / "accessors.toml")
    regmap_data, regmap_raw = read_toml(directory / "regmap.toml")
    hot_data, hot_raw = read_toml(directory / "hotpaths.toml")
    wrap_data, wrap_raw = read_toml(directory / "wrappers.toml")
    digest = hashlib.sha1(catalogue.digest.encode() + regmap_raw + hot_raw + wrap_raw,
                          usedforsecurity=False).hexdigest()[:16]
    return RuleSet(catalogue, _regmap(regmap_data, "regmap.toml"),
                   _hot(hot_data, "hotpaths.toml"), _wrapper_rules(wrap_data), digest)


def _wrapper_rules(data: dict[str, Any]) -> WrapperRules:
    limit = data.get("max_function_lines")
    if not isinstance(limit, int) or limit < 1:
        raise RuleError("wrappers.toml: max_function_lines must be a positive integer")
    macros = data.get("definition_macros", [])
    if not isinstance(macros, list) or not all(isinstance(m, str) for m in macros):
        raise RuleError("wrappers.toml: definition_macros must be a list of names")
    cap = data.get("max_funnel_lines", 400)
    if not isinstance(cap, int) or cap < 1:
        raise RuleError("wrappers.toml: max_funnel_lines must be a positive integer")
    return WrapperRules(limit, frozenset(macros), cap)
