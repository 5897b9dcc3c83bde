"""Map each source file of a kernel tree to its driver, Kconfig symbol, group and build state.

Kbuild is read the way make reads it, only as far as module membership needs:

- The descent starts at the root Kbuild (`obj-y += drivers/`, `obj-$(CONFIG_NET) += net/`)
  plus the `core-y`/`drivers-y`/`libs-y` folders of the root Makefile and arch/x86/Makefile.
  Each folder is read from its Kbuild file, else its Makefile, as scripts/Makefile.build does.
- `obj-$(CONFIG_X) += foo.o` makes foo.c module foo under X; composite objects (`foo-y`,
  `foo-objs`, `foo-$(CONFIG_Y)`) make every part a file of module foo; `obj-$(CONFIG_X) +=
  sub/` makes every condition on the way down a condition of the files below.
- Variables, `include`, and the make functions Makefiles use for object lists (addprefix,
  patsubst, if, foreach, ...) are expanded. `$(CONFIG_X)` is kept symbolic (a marker), so one
  parse serves every .config. `ifeq`/`ifdef` blocks are read as if always true: both branches
  count, which can only make a file look built when it is not (the safe side for an audit).

Groups come from Kconfig facts (kernel/kconfig.py) and rules/groups.toml: see kernel/groups.py.
"""


from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

from mmioscan.core.model import DriverInfo, Problem
from mmioscan.kernel.dotconfig import enabled
from mmioscan.kernel.groups import Grouper, GroupRules
from mmioscan.kernel.kconfig import (
    KconfigFacts,
    KconfigLoadError,
    load_kconfig_facts,
)
from mmioscan.kernel.makefiles import FileMapping, Kbuild, KbuildObject, Route, merge_conditions

_SOURCE_EXTS = frozenset({".c", ".S", ".rs"})  # what a `foo.o` is built from


class DriverMap:
    """Source file -> DriverInfo for one tree (and optionally one .config).

    Build once (`DriverMap.build`), then `lookup` any path; answers are memoised. Problems
    met (unreadable Makefiles, unevaluable lines, Kconfig errors) are in `problems`, never
    raised.
    """

    def __init__(self, root: Path, kbuild: Kbuild, grouper: Grouper,
                 config: dict[str, str] | None, problems: list[Problem]) -> None:
        self.root = root
        self.config = config
        self._problems = problems
        self._kbuild = kbuild
        self._grouper = grouper
        self._memo: dict[str, DriverInfo] = {}
        self._listed: dict[str, DriverInfo | None] = {}
        self._c_drivers: dict[str, list[DriverInfo]] = {}
        self._orphans: dict[str, dict[str, list[KbuildObject]]] = {}

    @classmethod
    def build(cls, root: Path, rules: GroupRules, config: dict[str, str] | None = None,
              paths: Iterable[str] | None = None, *,
              cache_dir: Path | None = None) -> DriverMap:
        """Read the tree's Kbuild files and Kconfig. `paths`, when given, are looked up now
        (the map answers for any other path too). `cache_dir` caches the Kconfig facts."""
        wanted = None if paths is None else list(paths)
        scope = None if wanted is None else {posixpath.dirname(p) for p in wanted}
        kbuild = Kbuild(root, rules.arch, scope, rules.always_built)
        problems: list[Problem] = []
        facts: KconfigFacts | None = None
        if kbuild.kbuild_file("") is None and not (root / "Kconfig").exists():
            # Not a kernel tree (a folder scanned on its own): one line says it all.
            problems.append(Problem(".", "no Kconfig and no Kbuild at the root: drivers are "
                                         "folders, groups come from path rules only"))
            kbuild.has_root = False
        else:
            facts = cls._kconfig(root, rules, cache_dir, problems)
            kbuild.walk()
        built = cls(root, kbuild, Grouper(rules, facts), config, problems)
        for path in wanted or ():
            built.lookup(path)
        return built

    @staticmethod
    def _kconfig(root: Path, rules: GroupRules, cache_dir: Path | None,
                 problems: list[Problem]) -> KconfigFacts | None:
        try:
            return load_kconfig_facts(root, rules.arch, cache_dir)
        except KconfigLoadError as exc:
            # Tree-level (path "."): the root Kconfig may not exist at all.
            where = "Kconfig" if (root / "Kconfig").is_file() else "."
            problems.append(Problem(where, f"{exc}; groups from path rules only"))
            return None

    @property
    def problems(self) -> list[Problem]:
        """Kconfig and Makefile problems met so far (lookups outside the first scope read
        more Makefiles), each once, in the order met."""
        return self._problems + list(dict.fromkeys(self._kbuild.problems))

    # -- lookup ---------------------------------------------------------------------------

    def lookup(self, path: str) -> DriverInfo:
        """The driver of `path` (POSIX, relative to the root): any file, .c, .h or other."""
        info = self._memo.get(path)
        if info is None:
            info = self._memo[path] = self._other_arch(path, self._lookup(path))
        return info

    def _other_arch(self, path: str, info: DriverInfo) -> DriverInfo:
        """Another architecture's code (arch/arm/...) is never built for this one, headers
        included, whatever its Makefiles say."""
        if (self.config is None or not path.startswith("arch/")
                or path.startswith(self._grouper.arch_dir) or info.reachable is False):
            return info
        return DriverInfo(info.name, info.config_symbol, info.group, info.group_reason, False,
                          info.evidence + f"; not built for {self._grouper.arch_dir[:-1]}")

    def _lookup(self, path: str) -> DriverInfo:
        path = posixpath.normpath(path)  # "./drivers/x.c" and "drivers//x.c" too
        self._kbuild.widen(posixpath.dirname(path))
        stem, ext = posixpath.splitext(path)
        if ext in _SOURCE_EXTS:
            info = self._object_info(path, stem)
            if info is not None:
                return info
        if ext == ".h":
            return self._header_info(path)
        return self._folder_info(path)

    def _object_info(self, path: str, stem: str) -> DriverInfo | None:
        """The driver of a source file some object list names, else None (memoised: every
        header of a folder asks about the folder's .c files)."""
        if path not in self._listed:
            self._listed[path] = self._listed_info(path, stem)
        return self._listed[path]

    def _listed_info(self, path: str, stem: str) -> DriverInfo | None:
        mappings = self._kbuild.objects.get(stem)
        if mappings:
            return self._from_mappings(path, mappings)
        return self._orphan_info(path, stem)

    def _from_mappings(self, path: str, mappings: list[FileMapping]) -> DriverInfo:
        # The walk order depends on the scope; the answer must not.
        first = min(mappings)
        symbols = merge_conditions((first.symbol,) if first.symbol else (), first.extra,
                         tuple(reversed(first.conds)))
        group, reason = self._grouper.classify(path, symbols)
        reachable = None if self.config is None else \
            any(enabled(m.conds, self.config) for m in mappings)
        evidence = first.evidence
        others = sorted({m.module for m in mappings} - {first.module})
        if others:
            evidence += f" (also linked into {', '.join(others)})"
        return DriverInfo(first.module, first.symbol, group, reason, reachable, evidence)

    def _orphan_info(self, path: str, stem: str) -> DriverInfo | None:
        """A file its folder's Makefile lists, in a folder no route from the root reaches
        (another architecture's code, host tools): named, never built for this arch."""
        folder = posixpath.dirname(path)
        if self._kbuild.routes.get(folder):
            return None
        if folder not in self._orphans:
            table: dict[str, list[KbuildObject]] = {}
            for obj in self._kbuild.orphan_objects(folder):
                table.setdefault(obj.stem, []).append(obj)
            self._orphans[folder] = table
        objs = self._orphans[folder].get(stem)
        if not objs:
            return None
        obj = objs[0]
        symbol = obj.conds[-1] if obj.conds else None
        group, reason = self._grouper.classify(path, merge_conditions(tuple(reversed(obj.conds)),
                                                            obj.extra))
        reachable = None if self.config is None or not self._kbuild.has_root else False
        note = "; folder not reached from the root Kbuild" if self._kbuild.has_root else ""
        return DriverInfo(obj.module, symbol, group, reason, reachable, obj.evidence + note)

    def _header_info(self, path: str) -> DriverInfo:
        """A header belongs to the one driver its folder's .c files build, else the folder."""
        folder = posixpath.dirname(path)
        infos = self._folder_drivers(folder)
        names = sorted({info.name for info in infos})
        if len(names) != 1:
            fallback = self._folder_info(path)
            if not infos or self.config is None:
                return fallback
            reachable = any(info.reachable for info in infos)
            return DriverInfo(fallback.name, None, fallback.group, fallback.group_reason,
                              reachable, f"header of {len(names)} drivers: {', '.join(names)}")
        first = infos[0]
        group, reason = self._grouper.classify(path, ()) if self._path_group(path) else \
            (first.group, first.group_reason)
        built = None if self.config is None else any(i.reachable for i in infos)
        return DriverInfo(first.name, first.config_symbol, group, reason, built,
                          f"header next to the sources of {first.name}: {first.evidence}")

    def _path_group(self, path: str) -> bool:
        return any(path.startswith(p) for g in self._grouper.rules.groups for p in g.paths)

    def _folder_info(self, path: str) -> DriverInfo:
        """Outside every object list: the folder is the driver; built when the folder is."""
        folder = posixpath.dirname(path)
        routes = self._kbuild.routes.get(folder, [])
        route = min(routes) if routes else None
        symbols = tuple(reversed(route.conds)) if route else ()
        group, reason = self._grouper.classify(path, symbols)
        if route is None:
            evidence = "in no Makefile"
        else:
            kbuild_file = self._kbuild.kbuild_file(folder) or f"{folder}/Makefile"
            included = "" if path.endswith(".h") or folder in self._kbuild.always_built \
                else " (built only if a built file #includes it)"
            evidence = f"not in {kbuild_file}{included}; folder built via {route.evidence}"
        return DriverInfo(folder or ".", None, group, reason,
                          self._folder_reachable(path, routes), evidence)

    def _folder_reachable(self, path: str, routes: list[Route]) -> bool | None:
        if self.config is None:
            return None
        folder = posixpath.dirname(path)
        if routes:
            built = any(enabled(r.conds, self.config) for r in routes)
            if path.endswith(".h") or folder in self._kbuild.always_built:
                return built
            # A source file no object list names is built only if a built file #includes
            # it (uhci-pci.c, selftests) or never (process_32.c on x86_64): unknown.
            return None if built else False
        # A header outside the built folders (include/...) is built when a built file
        # includes it, which Kbuild does not say; other files there are not built.
        if path.endswith(".h") or not self._kbuild.has_root:
            return None
        return False

    def _folder_drivers(self, folder: str) -> list[DriverInfo]:
        """The drivers of the .c files of `folder` that some object list names."""
        infos = self._c_drivers.get(folder)
        if infos is None:
            try:
                names = sorted(e.name for e in os.scandir(self.root / folder)
                               if e.name.endswith(".c") and e.is_file())
            except OSError:
                names = []
            paths = [f"{folder}/{n}" if folder else n for n in names]
            infos = self._c_drivers[folder] = [
                info for p in paths if (info := self._object_info(p, p[:-2])) is not None]
        return infos

