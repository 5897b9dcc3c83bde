"""All rule files of rules/ loaded together: catalogue, regmap, hot-path roots."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmioscan.core.catalogue import Catalogue, RuleError, load_catalogue, read_toml
from mmioscan.core.rules_path import rules_dir

# The kind of a root whose rule names none; RESET_KIND marks reset functions, not roots.
DEFAULT_KIND = "hot"
RESET_KIND = "reset"

_REGMAP_ACCESS = frozenset({"read", "write", "both"})


@dataclass(frozen=True, slots=True)
class Regmap:
    init: frozenset[str]  # (devm_)regmap_init_mmio*: the maps they make are MMIO
    api: dict[str, str]  # regmap_read -> "read", regmap_update_bits -> "both", ...
    syscon: frozenset[str] = frozenset()  # syscon getters: their maps are MMIO
    bus_prefixes: tuple[str, ...] = ()  # other regmap_init_* names: bus maps, not MMIO
    generic: dict[str, tuple[int, ...]] = field(default_factory=dict)  # (bus, config) index
    mmio_base: dict[str, int] = field(default_factory=dict)  # init name -> base argument
    port_maps: frozenset[str] = frozenset()  # ioport_map: a base from one is port I/O
    field_alloc: dict[str, tuple[int, ...]] = field(default_factory=dict)  # (map, field|-1)
    device_getters: frozenset[str] = frozenset()  # dev_get_regmap
    callback_fields: frozenset[str] = frozenset()  # .reg_read, .reg_write, .read, ...
    bus: frozenset[str] = frozenset()  # bus makers by name, for the gathering

    def is_bus(self, name: str) -> bool:
        """A maker of a bus map (I2C, SPI, ...): a regmap_init_* name that is not MMIO."""
        return name not in self.init and name.startswith(self.bus_prefixes)

    def makers(self) -> frozenset[str]:
        """Every exact name whose call makes or finds a map (bus makers go by prefix)."""
        return (self.init | self.syscon | frozenset(self.generic) | self.port_maps
                | frozenset(self.field_alloc) | self.device_getters)

    def maybe_mmio(self) -> frozenset[str]:
        """Makers whose maps may be MMIO: a driver calling none of them has no MMIO map."""
        return self.init | self.syscon | frozenset(self.generic)


@dataclass(frozen=True, slots=True)
class HotPaths:
    registrations: dict[str, tuple[int, ...]]  # request_irq -> (1,): the handler's argument
    fields: frozenset[str]  # ndo_start_xmit, ... (reset fields too: ndo_tx_timeout)
    # How a root is installed (a HotRoot's `how`: request_irq, request_threaded_irq[2],
    # .ndo_start_xmit) -> its kind (irq, irq-thread, xmit, ..., or "reset": no root)
    kinds: dict[str, str] = field(default_factory=dict)
    structs: dict[str, str] = field(default_factory=dict)  # field -> its ops struct
    reset_words: frozenset[str] = frozenset()  # igb_reset: a reset function by its name
    reset_except: tuple[str, ...] = ()  # readl_poll_timeout is none

    def kind_of(self, how: str) -> str:
        """The kind of a root installed by `how` (unknown: "hot")."""
        if how in self.kinds:
            return self.kinds[how]
        return self.kinds.get(how.split("[", 1)[0], DEFAULT_KIND)

    def is_reset_name(self, name: str) -> bool:
        """Does the function's name say reset or error handling (rules/hotpaths.toml)?"""
        if any(e in name for e in self.reset_except):
            return False
        return not self.reset_words.isdisjoint(name.lower().split("_"))


@dataclass(frozen=True, slots=True)
class WrapperRules:
    max_function_lines: int  # a larger function reaching an accessor is a user, not a wrapper
    definition_macros: frozenset[str] = frozenset()  # EXPORT_SYMBOL(readl) defines, not uses
    max_funnel_lines: int = 400  # the funnel rule's safety valve: longer functions never funnel


@dataclass(frozen=True, slots=True)
class RamSources:
    """What makes an `__iomem` pointer's value RAM (rules/ram.toml, cfront/rambacked.py)."""

    allocators: frozenset[str] = frozenset()  # dma_alloc_coherent, kzalloc, page_address, ...
    align: frozenset[str] = frozenset()  # ALIGN, PTR_ALIGN: the first argument's memory
    objects: bool = False  # `&obj`, an array: the storage of an object the file defines
    assigners: tuple[str, ...] = ()  # callee name parts: `swap(p, q)` may assign p

    def __bool__(self) -> bool:
        return bool(self.allocators or self.align or self.objects)


@dataclass(frozen=True, slots=True)
class RuleSet:
    catalogue: Catalogue
    regmap: Regmap
    hot: HotPaths
    wrappers: WrapperRules
    digest: str  # of every rules file: part of the cache key
    ram: RamSources = field(default_factory=RamSources)


def _regmap(data: dict[str, Any], where: str) -> Regmap:
    init, api = data.get("init"), data.get("api")
    if not isinstance(init, list) or not all(isinstance(n, str) for n in init):
        raise RuleError(f"{where}: `init` must be a list of names")
    if not isinstance(api, dict) or not api:
        raise RuleError(f"{where}: `[api]` must map names to read/write/both")
    bad = sorted(n for n, a in api.items() if a not in _REGMAP_ACCESS)
    if bad:
        raise RuleError(f"{where}: access of {', '.join(bad)} must be read, write or both")
    return Regmap(frozenset(init), dict(api), _names(data, "syscon", where),
                  tuple(_names(data, "bus_prefixes", where)),
                  _indexes(data, "generic", 2, where), {
                      n: i[0] for n, i in _indexes(data, "mmio_base", 1, where).items()},
                  _names(data.get("port", {}), "maps", where),
                  _indexes(data, "field_alloc", 2, where),
                  _names(data.get("device", {}), "getters", where),
                  _names(data.get("callbacks", {}), "fields", where),
                  _names(data, "bus", where))


def _names(data: dict[str, Any], key: str, where: str) -> frozenset[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise RuleError(f"{where}: `{key}` must be a list of names")
    return frozenset(value)


def _indexes(data: dict[str, Any], key: str, count: int, where: str
             ) -> dict[str, tuple[int, ...]]:
    """`[key]` table: name -> `count` argument indexes (an int when count is 1)."""
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise RuleError(f"{where}: `[{key}]` must be a table")
    result: dict[str, tuple[int, ...]] = {}
    for name, value in table.items():
        values = [value] if isinstance(value, int) else value
        if (not isinstance(values, list) or len(values) != count
                or not all(isinstance(v, int) and v >= -1 for v in values)):
            raise RuleError(f"{where}: [{key}] {name} must be {count} argument index(es)")
        result[name] = tuple(values)
    return result


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
    kinds = _registration_kinds(data.get("registration_kinds", {}), registrations, where)
    structs: dict[str, str] = {}
    for name, value in fields.items():
        if isinstance(value, str):
            structs[name], kinds["." + name] = value, DEFAULT_KIND
        elif (isinstance(value, dict) and isinstance(value.get("struct"), str)
              and isinstance(value.get("kind"), str) and set(value) == {"struct", "kind"}):
            structs[name], kinds["." + name] = value["struct"], value["kind"]
        else:
            raise RuleError(f"{where}: [fields] {name} must be a struct name or "
                            "{ struct = ..., kind = ... }")
    reset = data.get("reset", {})
    words = reset.get("words", []) if isinstance(reset, dict) else None
    excepted = reset.get("except", []) if isinstance(reset, dict) else None
    if not isinstance(words, list) or not isinstance(excepted, list) or not (
            _strings(words) and _strings(excepted)):
        raise RuleError(f"{where}: [reset] words and except must be lists of strings")
    return HotPaths(registrations, frozenset(fields), kinds, structs,
                    frozenset(w.lower() for w in words), tuple(excepted))


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _registration_kinds(table: object, registrations: dict[str, tuple[int, ...]],
                        where: str) -> dict[str, str]:
    """how -> kind: `name` for the first callback argument, `name[index]` for later ones."""
    if not isinstance(table, dict):
        raise RuleError(f"{where}: [registration_kinds] must be a table")
    kinds: dict[str, str] = {}
    for name, value in table.items():
        positions = registrations.get(name)
        if positions is None:
            raise RuleError(f"{where}: [registration_kinds] {name} is no registration")
        each = [value] * len(positions) if isinstance(value, str) else value
        if not _strings(each) or len(each) != len(positions):
            raise RuleError(f"{where}: [registration_kinds] {name} must be a kind or one "
                            "kind per callback argument")
        for i, (position, kind) in enumerate(zip(positions, each, strict=True)):
            kinds[root_how(name, position) if i else name] = kind
    return kinds


def root_how(name: str, position: int) -> str:
    """How a root registered through a later callback argument is reported."""
    return f"{name}[{position}]"


def load_rules(directory: Path | None = None, accessors: Path | None = None) -> RuleSet:
    """Load and validate every rules file; RuleError names the file and the problem."""
    directory = directory or rules_dir()
    catalogue = load_catalogue(accessors or directory / "accessors.toml")
    regmap_data, regmap_raw = read_toml(directory / "regmap.toml")
    hot_data, hot_raw = read_toml(directory / "hotpaths.toml")
    wrap_data, wrap_raw = read_toml(directory / "wrappers.toml")
    ram_data, ram_raw = read_toml(directory / "ram.toml")
    digest = hashlib.sha1(catalogue.digest.encode() + regmap_raw + hot_raw + wrap_raw
                          + ram_raw, usedforsecurity=False).hexdigest()[:16]
    return RuleSet(catalogue, _regmap(regmap_data, "regmap.toml"),
                   _hot(hot_data, "hotpaths.toml"), _wrapper_rules(wrap_data), digest,
                   _ram(ram_data))


def _ram(data: dict[str, Any]) -> RamSources:
    objects = data.get("objects", False)
    if not isinstance(objects, bool):
        raise RuleError("ram.toml: objects must be true or false")
    return RamSources(_names(data, "allocators", "ram.toml"), _names(data, "align", "ram.toml"),
                      objects, tuple(sorted(_names(data, "assigners", "ram.toml"))))


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
