"""The accessor catalogue (rules/accessors.toml): data in, frozen records out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mmioscan.core.rules_path import rules_dir
from mmioscan.core.toml import RuleError, read_toml

__all__ = ["Accessor", "Catalogue", "RuleError", "load_catalogue", "read_toml"]

FAMILIES = frozenset({"mmio", "iomap", "bulk", "split", "poll", "submit", "pio"})
ACCESSES = frozenset({"read", "write"})
WIDTHS = frozenset({8, 16, 32, 64, 512})  # 512: one MOVDIR64B command




@dataclass(frozen=True, slots=True)
class Accessor:
    name: str
    family: str
    access: str
    width: int
    ordering: str
    endian: str
    header: str
    addr_arg: int
    count_arg: int | None = None
    count_unit: str | None = None
    reaches: tuple[str, ...] = ()
    accesses: int = 1


@dataclass(frozen=True, slots=True)
class Catalogue:
    accessors: dict[str, Accessor]
    digest: str  # hash of the rules text: part of every cache key

    def names(self) -> frozenset[str]:
        return frozenset(self.accessors)

    def get(self, name: str) -> Accessor | None:
        return self.accessors.get(name)


def _accessor(entry: object, where: str) -> Accessor:
    if not isinstance(entry, dict):
        raise RuleError(f"{where}: expected a table")
    try:
        reaches = entry.get("reaches", ())
        acc = Accessor(
            name=str(entry["name"]), family=str(entry["family"]), access=str(entry["access"]),
            width=int(entry["width"]), ordering=str(entry.get("ordering", "ordered")),
            endian=str(entry.get("endian", "le")), header=str(entry["header"]),
            addr_arg=int(entry.get("addr_arg", 0)),
            count_arg=None if entry.get("count_arg") is None else int(entry["count_arg"]),
            count_unit=entry.get("count_unit"),
            reaches=tuple([reaches] if isinstance(reaches, str) else reaches),
            accesses=int(entry.get("accesses", 1)),
        )
    except KeyError as exc:
        raise RuleError(f"{where}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf)
        raise RuleError(f"{where}: bad value ({exc})") from None
    if not all(isinstance(r, str) for r in acc.reaches):
        raise RuleError(f"{where}: `reaches` must be a name or a list of names")
    if acc.family not in FAMILIES:
        raise RuleError(f"{where}: unknown family {acc.family!r}")
    if acc.access not in ACCESSES:
        raise RuleError(f"{where}: access must be read or write, not {acc.access!r}")
    if acc.width not in WIDTHS:
        raise RuleError(f"{where}: width must be one of 8/16/32/64/512, not {acc.width}")
    return acc


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate the catalogue; RuleError on any problem."""
    path = path or rules_dir() / "accessors.toml"
    data, raw = read_toml(path)
    entries = data.get("accessor")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{path}: no [[accessor]] entries")
    accessors: dict[str, Accessor] = {}
    for i, entry in enumerate(entries):
        acc = _accessor(entry, f"{path.name}: accessor #{i + 1}")
        if acc.name in accessors:
            raise RuleError(f"{path.name}: accessor {acc.name!r} listed twice")
        accessors[acc.name] = acc
    for acc in accessors.values():
        missing = [r for r in acc.reaches if r not in accessors]
        if missing:
            raise RuleError(f"{path.name}: {acc.name} reaches unknown {', '.join(missing)}")
    return Catalogue(accessors, hashlib.sha1(raw).hexdigest()[:16])
