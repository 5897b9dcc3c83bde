"""Kconfig facts for driver groups: each symbol's direct dependency, selects and location.

kconfiglib parses the tree's own Kconfig for ARCH=x86. Three adaptations keep that fast,
deterministic and independent of the host:

- `$(shell,...)` is answered by a stub (`functions`, installed through kconfiglib's
  KCONFIG_FUNCTIONS hook) instead of running the compiler ~100 times: toolchain probes
  succeed, version scripts report fixed versions. The probes only set toolchain symbols
  (CC_HAS_*), which never decide a driver's group.
- kconfiglib 14.1 predates the bare `modules` keyword of kernel 6.x; it is read as the
  equivalent `option modules`.
- The derived facts (plain strings and tuples) can be cached as JSON keyed by a hash of every
  Kconfig file read, so later runs skip the ~2 s parse.

Expressions are stored as nested tuples: a symbol name (str), ("const", value),
("&&", a, b), ("||", a, b), ("!", a) or ("cmp", op, a, b).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, Union

import kconfiglib

from mmioscan.core.fileio import write_atomic

# Bump when the shape of the cached facts or the stub's answers change.
FACTS_VERSION = 1

Expr = Union[str, tuple[Any, ...]]  # noqa: UP007 (a recursive alias needs Union at runtime)
TRUE: Expr = ("const", "y")


class KconfigLoadError(Exception):
    """The tree's Kconfig could not be parsed; the message is one line."""


@dataclass(frozen=True, slots=True)
class SymbolFacts:
    dep: Expr  # full direct dependency: depends on, enclosing if/menu, OR over definitions
    selects: tuple[str, ...]  # symbols this one selects (any condition)
    files: tuple[str, ...]  # Kconfig files defining it, relative to the tree root


@dataclass(frozen=True, slots=True)
class KconfigFacts:
    arch: str
    symbols: dict[str, SymbolFacts]
    # Symbols some other architecture's Kconfig also defines (arch/<not arch>/...).
    other_arch: frozenset[str]
    digest: str  # hash of the Kconfig files read: the cache key


# ---------------------------------------------------------------- the $(shell,...) stub

_IF_SUCCESS = re.compile(
    r'^\{ (?P<cmd>.*); \} >/dev/null 2>&1 && echo "(?P<yes>[^"]*)" \|\| echo "(?P<no>[^"]*)"$',
    re.S)
_SET_ECHO = re.compile(r"^set -- (?P<words>.*) && echo \$(?P<n>\d)$")
_TEST_Z = re.compile(r'^test -z "(?P<s>[^"]*)"$')
_TEST_EQ = re.compile(r'^test "(?P<a>[^"]*)" = (?P<b>\S+)$')
# Fixed answers for the toolchain version scripts: a recent GCC/binutils, no pahole, no Rust.
_VERSIONS = (("cc-version.sh", "GCC 140200"), ("as-version.sh", "GNU 24400"),
             ("ld-version.sh", "BFD 24400"), ("pahole-version.sh", "0"),
             ("rustc-version.sh", "0"), ("rustc-llvm-version.sh", "0"))


def _probe_succeeds(cmd: str) -> bool:
    """What a capable GCC toolchain would answer, without running anything."""
    m = _TEST_Z.match(cmd)
    if m:
        return not m["s"].strip()
    m = _TEST_EQ.match(cmd)
    if m:
        return m["a"] == m["b"]
    # No Rust toolchain, no GCC plugins: keeps RUST and GCC_PLUGINS off, as on most hosts.
    return not ("rust" in cmd or cmd.startswith("test -e"))


def _stub_shell(_kconf: object, _name: str, command: str) -> str:
    m = _IF_SUCCESS.match(command)
    if m:
        return m["yes"] if _probe_succeeds(m["cmd"]) else m["no"]
    m = _SET_ECHO.match(command)
    if m:
        words, n = m["words"].split(), int(m["n"])
        return words[n - 1] if 0 < n <= len(words) else ""
    for script, answer in _VERSIONS:
        if script in command:
            return answer
    return ""


# kconfiglib imports the module named by $KCONFIG_FUNCTIONS and merges its `functions` into
# its preprocessor functions, after the built-ins: this replaces `shell`.
functions: dict[str, tuple[Callable[..., str], int, int]] = {"shell": (_stub_shell, 1, 1)}


# ---------------------------------------------------------------- parsing with kconfiglib

_BARE_MODULES = re.compile(r"(?m)^(\s+)modules[ \t]*$")


class _Kconfig(kconfiglib.Kconfig):  # type: ignore[misc]
    """kconfiglib with the 6.x `modules` keyword accepted."""

    def _open(self, filename: str, mode: str) -> TextIO:
        if mode != "r":
            return super()._open(filename, mode)  # type: ignore[no-any-return]
        with open(filename, encoding="utf-8", errors="replace") as f:
            text = f.read()
        return io.StringIO(_BARE_MODULES.sub(r"\1option modules", text))


_ENV_LOCK = threading.Lock()


@contextmanager
def _kconfig_env(root: Path, arch: str) -> Iterator[None]:
    """kconfiglib reads os.environ while parsing: set what the kernel's Kconfig expects,
    then restore the caller's environment exactly."""
    values = {"srctree": str(root), "ARCH": arch, "SRCARCH": arch, "KERNELVERSION": "6",
              "CC": "gcc", "LD": "ld", "HOSTCC": "gcc", "HOSTCXX": "g++", "RUSTC": "rustc",
              "BINDGEN": "bindgen", "CC_VERSION_TEXT": "gcc", "OBJCOPY": "objcopy",
              "KCONFIG_FUNCTIONS": __name__, "KCONFIG_WARN_UNDEF": "",
              "KCONFIG_STRICT": ""}
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def _convert(expr: Any) -> Expr:
    """A kconfiglib expression as plain tuples (picklable, JSON-able, hashable)."""
    if expr.__class__ is not tuple:
        if getattr(expr, "is_constant", False):
            return ("const", expr.name)
        name = getattr(expr, "name", None)
        return name if isinstance(name, str) else ("const", "?")  # choices: unknown
    op = expr[0]
    if op is kconfiglib.AND:
        return ("&&", _convert(expr[1]), _convert(expr[2]))
    if op is kconfiglib.OR:
        return ("||", _convert(expr[1]), _convert(expr[2]))
    if op is kconfiglib.NOT:
        return ("!", _convert(expr[1]))
    return ("cmp", kconfiglib.REL_TO_STR[op], _convert(expr[1]), _convert(expr[2]))


def _parse(root: Path, arch: str) -> tuple[dict[str, SymbolFacts], list[str]]:
    with _kconfig_env(root, arch):
        try:
            kconf = _Kconfig("Kconfig", warn=False, warn_to_stderr=False)
        except (OSError, kconfiglib.KconfigError) as exc:
            first = (str(exc).strip().splitlines() or ["unknown error"])[0]
            raise KconfigLoadError(first[:300]) from None
    symbols: dict[str, SymbolFacts] = {}
    for sym in kconf.unique_defined_syms:
        files = tuple(sorted({str(node.filename) for node in sym.nodes}))
        selects = tuple(dict.fromkeys(target.name for target, _cond in sym.selects))
        symbols[sym.name] = SymbolFacts(_convert(sym.direct_dep), selects, files)
    return symbols, sorted(set(kconf.kconfig_filenames))


_CONFIG_LINE = re.compile(rb"^[ \t]*(?:menu)?config[ \t]+([A-Za-z0-9_]+)", re.M)


def _other_arch_symbols(root: Path, arch: str) -> frozenset[str]:
    """Names that another architecture's Kconfig files define: a symbol defined only under
    arch/<arch>/ and nowhere else is a symbol only <arch> builds have."""
    names: set[str] = set()
    arch_dir = root / "arch"
    if not arch_dir.is_dir():
        return frozenset()
    for sub in sorted(arch_dir.iterdir()):
        if not sub.is_dir() or sub.name == arch:
            continue
        for kfile in sub.rglob("Kconfig*"):
            try:
                names.update(m.decode() for m in _CONFIG_LINE.findall(kfile.read_bytes()))
            except OSError:
                continue
    return frozenset(names)


def _digest(root: Path, files: list[str], arch: str) -> str:
    h = hashlib.sha1(f"{FACTS_VERSION}\0{arch}\0".encode())
    for name in files:
        h.update(os.fsencode(name) + b"\0")
        try:
            h.update((root / name).read_bytes())
        except OSError:
            h.update(b"\1missing")
    return h.hexdigest()


# ---------------------------------------------------------------- the JSON cache


def _cache_file(cache_dir: Path, root: Path, arch: str) -> Path:
    key = hashlib.sha1(os.fsencode(root.resolve()) + f"\0{arch}".encode()).hexdigest()[:16]
    return cache_dir / f"kconfig-{key}.json"


def _to_json(expr: Expr) -> Any:
    return expr if isinstance(expr, str) else [_to_json(e) if isinstance(e, (str, tuple))
                                               else e for e in expr]


def _from_json(data: Any) -> Expr:
    if isinstance(data, str):
        return data
    return tuple(_from_json(e) if isinstance(e, list) else e for e in data)


def _load_cached(path: Path, root: Path, arch: str) -> KconfigFacts | None:
    """The cached facts if every Kconfig file they came from is unchanged, else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != FACTS_VERSION or data.get("arch") != arch:
            return None
        if _digest(root, data["files"], arch) != data["digest"]:
            return None
        symbols = {name: SymbolFacts(_from_json(dep), tuple(sel), tuple(files))
                   for name, (dep, sel, files) in data["symbols"].items()}
        return KconfigFacts(arch, symbols, frozenset(data["other_arch"]), data["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache is rebuilt, never trusted


def _store(path: Path, facts: KconfigFacts, files: list[str]) -> None:
    data = {"version": FACTS_VERSION, "arch": facts.arch, "digest": facts.digest,
            "files": files, "other_arch": sorted(facts.other_arch),
            "symbols": {name: [_to_json(s.dep), list(s.selects), list(s.files)]
                        for name, s in sorted(facts.symbols.items())}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic, and no temporary file left behind on any failure (a full disk): a
        # concurrent reader sees the old or the new file.
        write_atomic(path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
    except (OSError, UnicodeEncodeError):
        pass  # caching is an optimisation only


def load_kconfig_facts(root: Path, arch: str = "x86",
                       cache_dir: Path | None = None) -> KconfigFacts:
    """Parse (or read from the cache) the tree's Kconfig. KconfigLoadError when impossible."""
    if not (root / "Kconfig").is_file():
        raise KconfigLoadError("not found at the tree root")
    cache = _cache_file(cache_dir, root, arch) if cache_dir is not None else None
    if cache is not None:
        cached = _load_cached(cache, root, arch)
        if cached is not None:
            return cached
    symbols, files = _parse(root, arch)
    facts = KconfigFacts(arch, symbols, _other_arch_symbols(root, arch),
                         _digest(root, files, arch))
    if cache is not None:
        _store(cache, facts, files)
    return facts


# ---------------------------------------------------------------- expressions


def expr_text(expr: Expr) -> str:
    """Kconfig syntax, parenthesised like kconfiglib's expr_str."""
    if isinstance(expr, str):
        return expr
    op = expr[0]
    if op == "const":
        return str(expr[1]) if expr[1] in ("y", "n", "m") else f'"{expr[1]}"'
    if op == "!":
        inner = expr_text(expr[1])
        return f"!({inner})" if isinstance(expr[1], tuple) and expr[1][0] != "const" \
            else f"!{inner}"
    if op == "cmp":
        return f"{expr_text(expr[2])} {expr[1]} {expr_text(expr[3])}"
    other = "||" if op == "&&" else "&&"
    parts = [f"({expr_text(e)})" if isinstance(e, tuple) and e[0] == other else expr_text(e)
             for e in expr[1:]]
    return f" {op} ".join(parts)


def expr_symbols(expr: Expr) -> list[str]:
    """Symbol names in an expression, first occurrence order."""
    out: dict[str, None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, str):
            out.setdefault(e)
        elif e[0] == "cmp":
            walk(e[2])
            walk(e[3])
        elif e[0] != "const":
            for sub in e[1:]:
                walk(sub)

    walk(expr)
    return list(out)
