"""Regmap sites, per map: a regmap API call is an MMIO site when the map it is given was made
by regmap_init_mmio*, by syscon, or by regmap_init with reg_read/reg_write callbacks that
reach an accessor (funnels of the call graph); never when a bus (I2C, SPI, ...) made it.

The map of a call is traced from its first argument (cfront/regmaps.py names it: target and
owner) to the maker that stored its result under the same name: in the same file first, then
in the other files of its folder (fields of the same struct type only). A call whose
map is not traced takes the kind every map of its file (else of its folder) agrees on; when
they disagree it is a site with map "unknown" (files of one driver are found by name:
see `agreed`). Only folders that make a map that may be MMIO
(rules/regmap.toml `maybe_mmio`) have regmap sites at all.

Map kinds: "mmio", "syscon", "port" (regmap-mmio over an ioport_map base: IN/OUT), "funnel"
(the config's callbacks reach an accessor), "bus" (not MMIO), "unknown".
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from mmioscan.analysis.callgraph import CallGraph, Reach
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.model import FileFacts, Site
from mmioscan.core.ruleset import Regmap

MapRecord = tuple[str, str, str, int, tuple[str, ...]]

MMIO_KINDS = frozenset({"mmio", "syscon", "port", "funnel"})
# Port accessors standing for regmap-mmio's ioread/iowrite on an I/O port cookie.
_PORT_ACCESSORS = {"read": ("inl",), "write": ("outl",), "both": ("inl", "outl")}


@dataclass(frozen=True, slots=True)
class MapKind:
    kind: str  # mmio | syscon | port | funnel | bus | unknown
    reach: Reach | None = None  # the callback's reach, for funnel maps
    callback: str | None = None  # the reg_read/reg_write callback, for funnel maps


_BUS = MapKind("bus")
_UNKNOWN = MapKind("unknown")


def _folder(path: str) -> str:
    return posixpath.dirname(path)


class MapTracer:
    """The kind of the map each regmap API call uses (see the module docstring)."""

    def __init__(self, facts: Mapping[str, FileFacts], regmap: Regmap,
                 graph: CallGraph | None, catalogue: Catalogue) -> None:
        self.regmap, self.graph, self.catalogue = regmap, graph, catalogue
        self.files = {p: f for p, f in facts.items() if p.endswith(".c") and f.regmap_maps}
        self.by_folder: dict[str, list[tuple[str, MapRecord]]] = {}
        self.configs: dict[str, dict[str, dict[str, str]]] = {}
        for path, f in sorted(facts.items()):
            if f.regmap_configs:
                merged: dict[str, dict[str, str]] = {}
                for name, fields in f.regmap_configs:  # initialisers, then assignments
                    merged.setdefault(name, {}).update(fields)
                self.configs[path] = merged
        for path, f in sorted(self.files.items()):
            for record in f.regmap_maps:
                self.by_folder.setdefault(_folder(path), []).append((path, record))
        maybe = regmap.maybe_mmio()
        self.mmio_folders = frozenset(
            _folder(p) for p, f in self.files.items() if any(r[0] in maybe for r in f.regmap_maps))
        self._kinds: dict[tuple[str, MapRecord], MapKind] = {}
        self._agreed: dict[str, MapKind | None] = {}
        self._agreed_for: dict[str, MapKind | None] = {}  # agreed(path), per path
        self._folder_files: dict[str, list[str]] = {}
        self._busy: set[tuple[str, MapRecord]] = set()

    def _records(self, path: str) -> tuple[MapRecord, ...]:
        f = self.files.get(path)
        return f.regmap_maps if f is not None else ()

    # -- one maker -------------------------------------------------------------------------

    def kind_of(self, path: str, record: MapRecord) -> MapKind:
        memo = (path, record)
        found = self._kinds.get(memo)
        if found is not None:
            return found
        if memo in self._busy:
            return _UNKNOWN  # a copy of itself
        self._busy.add(memo)
        try:
            found = self._kind(path, record)
        finally:
            self._busy.discard(memo)
        self._kinds[memo] = found
        return found

    def _kind(self, path: str, record: MapRecord) -> MapKind:
        maker, _, _, line, args = record
        rules = self.regmap
        if maker in rules.init:
            return MapKind("port") if self._on_port(path, maker, args) else MapKind("mmio")
        if maker in rules.syscon:
            return MapKind("syscon")
        if maker in rules.generic:
            return self._generic(path, maker, args)
        if maker == "=" or maker in rules.field_alloc:
            name, owner = (args + ("", ""))[:2]
            return self.trace(path, name, owner, line)
        if maker in rules.device_getters:
            if args and "parent" in args[0]:
                return _UNKNOWN  # the parent's map: made by another driver
            return self.agreed(path) or _UNKNOWN
        if rules.is_bus(maker):
            return _BUS
        return _UNKNOWN

    def _on_port(self, path: str, maker: str, args: tuple[str, ...]) -> bool:
        index = self.regmap.mmio_base.get(maker)
        base = args[index] if index is not None and index < len(args) else None
        config = args[index + 1] if index is not None and index + 1 < len(args) else None
        if config is not None and self._config(path, config).get("io_port") == "true":
            return True
        return base is not None and any(
            r[0] in self.regmap.port_maps and r[1] == base
            for r in self._records(path))

    def _config(self, path: str, name: str) -> dict[str, str]:
        found = self.configs.get(path, {}).get(name)
        if found is not None:
            return found
        for other, configs in self.configs.items():
            if _folder(other) == _folder(path) and name in configs:
                return configs[name]
        return {}

    def _generic(self, path: str, maker: str, args: tuple[str, ...]) -> MapKind:
        bus_index, config_index = self.regmap.generic[maker]
        bus = args[bus_index] if bus_index < len(args) else ""
        name = bus if bus not in ("", "NULL") else (
            args[config_index] if config_index < len(args) else "")
        fields = self._config(path, name)
        callbacks = [fields[f] for f in sorted(self.regmap.callback_fields) if f in fields]
        if not callbacks:
            return _UNKNOWN
        for callback in callbacks:
            reach = self._reach(path, callback)
            if reach is not None:
                return MapKind("funnel", reach, callback)
        return _BUS  # callbacks that reach no accessor: another bus (I2C, a firmware call)

    def _reach(self, path: str, name: str) -> Reach | None:
        graph = self.graph
        if graph is None:
            return None
        key = graph.resolve(path, name)
        if key is None:
            return None
        reach = graph.reach.get(key)
        if reach is not None:
            return reach
        # A callback too long to be a wrapper: its own accessor or wrapper calls count.
        definition = graph.definitions.get(key)
        facts = graph.files.get(definition.path) if definition is not None else None
        if definition is None or facts is None:
            return None
        wrappers = graph.wrapper_names()
        for scope in facts.scopes:
            if scope.name != definition.name or scope.line != definition.line:
                continue
            for callee in scope.callees:
                if self.catalogue.get(callee) is not None:
                    return Reach(callee, (name, callee), (key, callee), (callee,))
                inner = graph.reach.get(graph.resolve(definition.path, callee) or "")
                if callee in wrappers and inner is not None:
                    return Reach(inner.accessor, (name, *inner.via), (key, *inner.via_keys),
                                 inner.accessors)
        return None

    # -- one use ---------------------------------------------------------------------------

    def trace(self, path: str, target: str, owner: str, line: int) -> MapKind:
        """The kind of the map held by (target, owner), used at line of path."""
        if target.startswith("()"):
            return self._returned(path, target[2:], line)
        candidates = self._candidates(path, target, owner)
        if not candidates:
            return self.agreed(path) or _UNKNOWN
        return _combine(self.kind_of(p, r) for p, r in candidates)

    def _returned(self, path: str, function: str, line: int) -> MapKind:
        """`regmap_read(dev_get_regmap(dev, NULL), ...)` or `regmap_read(get_map(x), ...)`."""
        records = self._records(path)
        inline = [r for r in records if r[0] == function and r[3] == line]
        if inline:
            return _combine(self.kind_of(path, r) for r in inline)
        made = [(path, r) for r in records if r[1] == "()" + function]
        if not made:
            made = [(p, r) for p, r in self.by_folder.get(_folder(path), ())
                    if r[1] == "()" + function]
        if made:
            return _combine(self.kind_of(p, r) for p, r in made)
        return self.agreed(path) or _UNKNOWN

    def _candidates(self, path: str, target: str, owner: str) -> list[tuple[str, MapRecord]]:
        port = self.regmap.port_maps
        records = self._records(path)
        here = [(path, r) for r in records
                if r[1] == target and r[0] not in port and _owners_match(owner, r[2])]
        if here or owner.startswith("@"):
            return _exact(here, owner)
        if not owner:
            return []  # `a->b->map` in another file: the name alone says too little
        return [(p, r) for p, r in self.by_folder.get(_folder(path), ())
                if p != path and r[1] == target and r[0] not in port and r[2] == owner]

    def agreed(self, path: str) -> MapKind | None:
        """The kind the maps of the file agree on; if it makes none, the kind those of its
        related files (cs42l42.c: cs42l42-i2c.c, cs42l42-sdw.c) agree on; if they make none,
        the kind its folder agrees on. None when they differ or nothing makes a map.
        Memoised per file: asked for every use in a file, and finding the related files
        walks the folder (sound/soc/codecs: 600 files, for each of its 9,000 uses)."""
        if path not in self._agreed_for:
            self._agreed_for[path] = self._agree(path)
        return self._agreed_for[path]

    def _agree(self, path: str) -> MapKind | None:
        folder = _folder(path)
        related = [p for p in self._in_folder(folder) if p != path and _related(p, path)]
        levels = ((path, [path]), ("~" + path, related),
                  ("/" + folder, self._in_folder(folder)))
        for scope, paths in levels:
            if scope not in self._agreed:
                kinds = [self.kind_of(p, r) for p in paths for r in self._records(p)
                         if self._is_maker(r)]
                found = _combine(kinds) if kinds else None
                self._agreed[scope] = (found if found is None or found.kind != "unknown"
                                       else _UNKNOWN)
            found = self._agreed[scope]
            if found is not None:
                return None if found is _UNKNOWN else found
        return None

    def _in_folder(self, folder: str) -> list[str]:
        found = self._folder_files.get(folder)
        if found is None:
            found = self._folder_files[folder] = sorted(
                {p for p, _ in self.by_folder.get(folder, ())})
        return found

    def _is_maker(self, record: MapRecord) -> bool:
        rules = self.regmap
        maker = record[0]
        return (maker in rules.init or maker in rules.syscon or maker in rules.generic
                or rules.is_bus(maker))


def _stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


def _related(a: str, b: str) -> bool:
    """Files of one driver by name: one stem extends the other (`rt711-sdca`, `rt711-sdca-sdw`)."""
    x, y = sorted((_stem(a), _stem(b)), key=len)
    return len(y) > len(x) and y.startswith(x) and y[len(x)] in "-_"


def _exact(found: list[tuple[str, MapRecord]], owner: str) -> list[tuple[str, MapRecord]]:
    """The candidates stored under the use's own struct type, when there are some."""
    same = [c for c in found if owner and c[1][2] == owner]
    return same or found


def _owners_match(use: str, made: str) -> bool:
    if use.startswith("@") or made.startswith("@"):
        return use == made
    return not use or not made or use == made


def _combine(kinds: Iterable[MapKind]) -> MapKind:
    found = list(kinds)
    if not found:
        return _UNKNOWN
    names = {k.kind for k in found}
    if len(names) == 1:
        return found[0]
    if names == {"mmio", "syscon"}:
        return next(k for k in found if k.kind == "mmio")  # both are regmap-mmio maps
    return _UNKNOWN


def regmap_sites(scoped: Iterable[FileFacts], facts: Mapping[str, FileFacts],
                 graph: CallGraph | None, regmap: Regmap, catalogue: Catalogue
                 ) -> Iterator[Site]:
    tracer = MapTracer(facts, regmap, graph, catalogue)
    for f in scoped:
        if not f.path.endswith(".c") or _folder(f.path) not in tracer.mmio_folders:
            continue
        uses = {(u[0], u[1]): u for u in f.regmap_uses}
        for name, line, column, scope, active in f.calls:
            access = regmap.api.get(name)
            if access is None:
                continue
            use = uses.get((line, column))
            kind = (tracer.trace(f.path, use[2], use[3], line) if use is not None
                    else tracer.agreed(f.path) or _UNKNOWN)
            if kind.kind == "bus":
                continue
            yield _site(f, name, line, column, scope, active, access, kind, catalogue)


def _site(f: FileFacts, name: str, line: int, column: int, scope: int, active: bool,
          access: str, kind: MapKind, catalogue: Catalogue) -> Site:
    function = f.scopes[scope].name if scope >= 0 else None
    base = Site(path=f.path, line=line, column=column, function=function, callee=name,
                accessor=name, kind="regmap", access=access, width=None, family="regmap",
                active=active, via=(name, "regmap-mmio"), map=kind.kind)
    if kind.kind == "port":
        accessors = _PORT_ACCESSORS[access]
        return Site(path=f.path, line=line, column=column, function=function, callee=name,
                    accessor=accessors[0], kind="regmap", access=access, width=None,
                    family="port", active=active, via=(name, "regmap-mmio", accessors[0]),
                    accessors=accessors, map="port")
    if kind.kind == "funnel" and kind.reach is not None:
        reach = kind.reach
        acc = catalogue.get(reach.accessor)
        return Site(path=f.path, line=line, column=column, function=function, callee=name,
                    accessor=reach.accessor, kind="regmap", access=access,
                    width=acc.width if acc is not None and len(reach.accessors) == 1 else None,
                    family=acc.family if acc is not None else "regmap", active=active,
                    via=(name, *reach.via), accessors=reach.accessors, map="funnel")
    return base
