"""The accessor catalogue (rules/accessors.toml) checked against the real 6.12 tree."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CATALOGUE = Path(__file__).resolve().parents[2] / "rules" / "accessors.toml"

FAMILIES = ["mmio", "iomap", "bulk", "split", "poll", "submit", "pio"]
ACCESSES = {"read", "write"}
WIDTHS = {8, 16, 32, 64}
SUBMIT_WIDTH = 512  # one MOVDIR64B / ENQCMDS store of 64 bytes
ORDERINGS = {"ordered", "relaxed", "raw"}
ENDIANS = {"le", "be", "native"}
COUNT_UNITS = {"bytes", "elements"}
REQUIRED_KEYS = {"name", "family", "access", "width", "ordering", "endian", "header", "addr_arg"}
OPTIONAL_KEYS = {"count_arg", "count_unit", "reaches", "accesses", "generated_by"}

# Headers that hold x86_64's own definitions: a name defined here must not be
# attributed to a generic header.
X86_HEADERS = [
    "arch/x86/include/asm/io.h",
    "arch/x86/include/asm/shared/io.h",
    "arch/x86/include/asm/special_insns.h",
    "arch/x86/include/asm/video.h",
]

# Kconfig facts for x86_64, used to evaluate simple #if/#ifdef guards.
X86_64_SET = {"CONFIG_GENERIC_IOMAP", "CONFIG_64BIT", "CONFIG_X86_64", "CONFIG_MMU", "__KERNEL__"}
X86_64_UNSET = {"CONFIG_X86_32", "CONFIG_INDIRECT_PIO", "CONFIG_GENERIC_IOREMAP"}

_BWLQ = ["b", "w", "l", "q"]
_BWL = ["b", "w", "l"]
_SPLIT = ["lo_hi", "hi_lo"]
_RELAXED = ["", "_relaxed"]

# The names the brief requires; entries must not silently disappear.
REQUIRED_NAMES: set[str] = (
    {f"{op}{s}" for op in ("read", "write") for s in _BWLQ}
    | {f"{op}{s}_relaxed" for op in ("read", "write") for s in _BWLQ}
    | {f"__raw_{op}{s}" for op in ("read", "write") for s in _BWLQ}
    | {f"__{op}{s}" for op in ("read", "write") for s in _BWLQ}
    | {f"io{op}{n}" for op in ("read", "write") for n in ("8", "16", "32", "64")}
    | {f"io{op}{n}be" for op in ("read", "write") for n in ("16", "32", "64")}
    | {f"io{op}64{be}_{o}" for op in ("read", "write") for be in ("", "be") for o in _SPLIT}
    | {f"io{op}{n}_rep" for op in ("read", "write") for n in ("8", "16", "32")}
    | {f"{op}s{s}" for op in ("read", "write") for s in _BWLQ}
    | {"memcpy_fromio", "memcpy_toio", "memset_io"}
    | {"__ioread32_copy", "__iowrite32_copy", "__iowrite64_copy"}
    | {f"{o}_{op}q{r}" for o in _SPLIT for op in ("read", "write") for r in _RELAXED}
    | {f"read{s}{r}_poll_timeout{a}" for s in _BWLQ for r in _RELAXED for a in ("", "_atomic")}
    | {"iosubmit_cmds512"}
    | {f"{op}{s}" for op in ("in", "out") for s in _BWL}
    | {f"{op}{s}_p" for op in ("in", "out") for s in _BWL}
    | {f"{op}s{s}" for op in ("in", "out") for s in _BWL}
)

# Mapping/unmapping helpers and generic poll macros are not accessors.
FORBIDDEN_NAMES = {
    "ioremap",
    "ioremap_wc",
    "ioremap_uc",
    "ioremap_cache",
    "iounmap",
    "pci_iomap",
    "pci_iounmap",
    "ioport_map",
    "ioport_unmap",
    "devm_ioremap",
    "readx_poll_timeout",
    "read_poll_timeout",
    "readx_poll_timeout_atomic",
    "read_poll_timeout_atomic",
}


# --------------------------------------------------------------------------- helpers


def load_entries() -> list[dict[str, Any]]:
    with CATALOGUE.open("rb") as fh:
        data = tomllib.load(fh)
    assert set(data) == {"accessor"}, f"unexpected top-level keys: {sorted(data)}"
    entries = data["accessor"]
    assert isinstance(entries, list) and entries
    return entries


ENTRIES = load_entries()
BY_NAME = {e["name"]: e for e in ENTRIES}


def _ids(entries: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("name", "?")) for e in entries]


def reaches_of(entry: dict[str, Any]) -> list[str]:
    r = entry["reaches"]
    return [r] if isinstance(r, str) else list(r)


def strip_comments(text: str) -> str:
    """Remove C comments, keeping line structure (a block comment keeps its newlines)."""

    def repl(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.startswith("/*"):
            return "\n" * tok.count("\n") or " "
        if tok.startswith("//"):
            return ""
        return tok  # a string or character literal

    return re.sub(
        r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', repl, text, flags=re.S
    )


def whole_word(name: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def definition_lines(name: str, code: str) -> list[int]:
    """0-based line numbers where `name` is defined or declared (comment-free text).

    Kernel style: a #define of the name, an argument to build_mmio_read/write, or a
    column-0 declaration/definition (type words, then the name, then '(').
    """
    n = re.escape(name)
    patterns = [
        rf"^[ \t]*#[ \t]*define[ \t]+{n}(?![\w])",
        rf"^build_mmio_(?:read|write)\(\s*{n}\s*,",
        rf"^[A-Za-z_][\w \t*]*[ \t*]{n}[ \t]*\(",
    ]
    lines = code.split("\n")
    return [i for i, line in enumerate(lines) if any(re.match(p, line) for p in patterns)]


def generated_names(code: str, macro: str) -> set[str]:
    """Function names a generator macro defines, over all its column-0 invocations.

    Only `static [__always_]inline <type> A##param##B(` heads in the macro body count,
    with each parameter replaced by the invocation's argument.
    """
    head = rf"^[ \t]*#[ \t]*define[ \t]+{re.escape(macro)}\(([^)]*)\)"
    m = re.search(head + r"((?:[^\n]*\\\n)*[^\n]*)", code, re.M)
    if m is None:
        return set()
    params = [p.strip() for p in m.group(1).split(",")]
    body = m.group(2).replace("\\\n", "\n")
    heads = re.findall(
        r"static\s+(?:inline|__always_inline)\s+[\w\s*]*?(\w+(?:\s*##\s*\w+)+)\s*\(", body
    )
    names: set[str] = set()
    for inv in re.findall(rf"^{re.escape(macro)}\(([^)]*)\)", code, re.M):
        args = [a.strip() for a in inv.split(",")]
        if len(args) != len(params):
            continue
        binding = dict(zip(params, args, strict=True))
        for head in heads:
            names.add("".join(binding.get(p.strip(), p.strip()) for p in head.split("##")))
    return names


def excluded_on_x86_64(code: str, line_no: int) -> str | None:
    """The first enclosing #if-guard that is false on x86_64, or None.

    Only simple guards on known symbols are evaluated; anything else counts as true.
    """
    stack: list[tuple[str | None, bool, bool]] = []  # (symbol, wants_defined, in_else)
    directive = re.compile(r"^[ \t]*#[ \t]*(ifdef|ifndef|if|elif|else|endif)\b(.*)")
    for line in code.split("\n")[:line_no]:
        m = directive.match(line)
        if not m:
            continue
        kind, rest = m.group(1), m.group(2).strip()
        if kind in ("ifdef", "ifndef"):
            stack.append((rest.split()[0], kind == "ifdef", False))
        elif kind == "if":
            sm = re.fullmatch(r"(!?)\s*(?:defined|IS_ENABLED)\s*\(?\s*(\w+)\s*\)?", rest)
            stack.append((sm.group(2), sm.group(1) == "", False) if sm else (None, True, False))
        elif kind == "elif" and stack:
            stack[-1] = (None, True, False)
        elif kind == "else" and stack:
            sym, want, in_else = stack[-1]
            stack[-1] = (sym, want, not in_else)
        elif kind == "endif" and stack:
            stack.pop()
    for sym, want, in_else in stack:
        if sym in X86_64_SET:
            value = True
        elif sym in X86_64_UNSET:
            value = False
        else:
            continue
        if (value == want) == in_else:
            return f"{'#else of ' if in_else else ''}{'#ifdef' if want else '#ifndef'} {sym}"
    return None


@cache
def header_code(tree: Path, header: str) -> str:
    path = tree / header
    assert path.is_file(), f"{header} missing from the tree"
    return strip_comments(path.read_text(encoding="utf-8", errors="replace"))


# --------------------------------------------------------------------------- schema


def test_catalogue_not_trivially_small() -> None:
    assert len(ENTRIES) >= len(REQUIRED_NAMES)


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_entry_fields(entry: dict[str, Any]) -> None:
    keys = set(entry)
    assert keys >= REQUIRED_KEYS, f"missing {sorted(REQUIRED_KEYS - keys)}"
    unknown = keys - REQUIRED_KEYS - OPTIONAL_KEYS
    assert not unknown, f"unknown keys {sorted(unknown)}"

    name, family = entry["name"], entry["family"]
    assert isinstance(name, str) and re.fullmatch(r"[A-Za-z_]\w*", name)
    assert family in FAMILIES
    assert entry["access"] in ACCESSES
    width = entry["width"]
    assert type(width) is int
    if family == "submit":
        assert width == SUBMIT_WIDTH
    else:
        assert width in WIDTHS
    assert entry["ordering"] in ORDERINGS
    assert entry["endian"] in ENDIANS
    if entry["ordering"] == "raw":
        assert entry["endian"] == "native", "raw accessors never byte-swap"
    assert isinstance(entry["header"], str) and entry["header"].endswith(".h")
    addr_arg = entry["addr_arg"]
    assert type(addr_arg) is int and addr_arg >= 0

    has_count = "count_arg" in entry or "count_unit" in entry
    if family == "bulk" or has_count:
        count_ok = family in ("bulk", "submit") or re.fullmatch(r"(?:ins|outs)[bwl](?:_p)?", name)
        assert count_ok, "count_arg/count_unit only on bulk, submit and pio string entries"
        assert type(entry.get("count_arg")) is int and entry["count_arg"] >= 0
        assert entry["count_arg"] != addr_arg
        assert entry.get("count_unit") in COUNT_UNITS
        if entry["count_unit"] == "bytes":
            assert width == 8, "byte-counted copies are catalogued with width 8"

    if family in ("poll", "split"):
        assert "reaches" in entry, f"{family} entries must say what they reach"
        reached = reaches_of(entry)
        assert reached and all(isinstance(r, str) for r in reached)
        for r in reached:
            assert r in BY_NAME, f"reaches {r!r}, which is not catalogued"
            assert r != name
            target = BY_NAME[r]
            assert target["family"] in ("mmio", "iomap"), f"{r} is not a single accessor"
            assert target["access"] == entry["access"]
    else:
        assert "reaches" not in entry and "accesses" not in entry

    if family == "poll":
        (target,) = (BY_NAME[r] for r in reaches_of(entry))
        assert "accesses" not in entry
        assert (target["width"], target["ordering"], target["endian"]) == (
            width,
            entry["ordering"],
            entry["endian"],
        )
        assert name.startswith(target["name"] + "_poll_timeout")
    if family == "split":
        accesses = entry.get("accesses")
        assert type(accesses) is int and accesses >= 1
        assert accesses * width == 64, "a split helper moves exactly 64 bits"
        for r in reaches_of(entry):
            assert BY_NAME[r]["width"] == width

    if "generated_by" in entry:
        macro = entry["generated_by"]
        assert isinstance(macro, str) and re.fullmatch(r"\w+", macro)


def test_names_unique() -> None:
    names = [e["name"] for e in ENTRIES]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"duplicate names: {dupes}"


def test_sorted_by_family_then_name() -> None:
    keys = [(FAMILIES.index(e["family"]), e["name"]) for e in ENTRIES]
    assert keys == sorted(keys), "entries must be sorted by family (in FAMILIES order), then name"


def test_required_names_covered() -> None:
    missing = sorted(REQUIRED_NAMES - set(BY_NAME))
    assert not missing, f"catalogue lost required accessors: {missing}"


def test_no_mapping_helpers() -> None:
    assert not FORBIDDEN_NAMES & set(BY_NAME)


def test_families_match_names() -> None:
    """Spot checks that the brief's family assignment holds."""
    for name, entry in BY_NAME.items():
        fam = entry["family"]
        if re.fullmatch(r"(?:__raw_|__)?(?:read|write)[bwlq](?:_relaxed)?", name):
            assert fam == "mmio", name
        if re.fullmatch(r"io(?:read|write)(?:8|16|32|64)(?:be)?", name):
            assert fam == "iomap", name
        if "_lo_hi" in name or "_hi_lo" in name or name.startswith(("lo_hi_", "hi_lo_")):
            assert fam == "split", name
        if name.endswith(("_rep", "_copy")) or re.fullmatch(r"(?:read|write)s[bwlq]", name):
            assert fam == "bulk", name
        if "_poll_timeout" in name:
            assert fam == "poll", name
        if re.fullmatch(r"(?:__)?(?:in|out)s?[bwl](?:_p)?", name):
            assert fam == "pio", name


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_header_is_x86_or_generic(entry: dict[str, Any]) -> None:
    header = entry["header"]
    assert header.startswith(("arch/x86/", "include/")), (
        f"{entry['name']} is attributed to {header}, outside x86 and the generic headers"
    )
    assert not header.startswith("include/uapi/")


# --------------------------------------------------------------------------- generator helper


def test_generated_names_helper_can_fail() -> None:
    code = (
        "#define GEN(sfx, type) \\\n"
        "static inline type get##sfx##_x(int p) \\\n"
        "{ return put##sfx(p); }\n"
        "GEN(b, u8)\n"
        "GEN(w, u16)\n"
    )
    names = generated_names(code, "GEN")
    assert names == {"getb_x", "getw_x"}  # put##sfx is a call, not a definition
    assert "getl_x" not in names
    assert generated_names(code, "NOPE") == set()


# --------------------------------------------------------------------------- against the tree


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_name_defined_in_header(kernel_tree: Path, entry: dict[str, Any]) -> None:
    name, header = entry["name"], entry["header"]
    code = header_code(kernel_tree, header)
    assert whole_word(name, code), f"{name} does not appear (outside comments) in {header}"
    if "generated_by" in entry:
        macro = entry["generated_by"]
        assert whole_word(macro, code), f"generator {macro} not in {header}"
        produced = generated_names(code, macro)
        assert name in produced, f"{macro} in {header} generates {sorted(produced)}, not {name}"
    else:
        assert definition_lines(name, code), f"{header} mentions {name} but does not define it"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_definition_not_compiled_out_on_x86_64(kernel_tree: Path, entry: dict[str, Any]) -> None:
    name, header = entry["name"], entry["header"]
    code = header_code(kernel_tree, header)
    lines = definition_lines(name, code)
    if not lines:
        assert "generated_by" in entry
        return
    guards = [excluded_on_x86_64(code, i) for i in lines]
    assert any(g is None for g in guards), (
        f"every definition of {name} in {header} is compiled out on x86_64: {guards}"
    )


@pytest.mark.parametrize(
    "entry",
    [e for e in ENTRIES if not e["header"].startswith("arch/x86/")],
    ids=_ids([e for e in ENTRIES if not e["header"].startswith("arch/x86/")]),
)
def test_x86_definition_preferred(kernel_tree: Path, entry: dict[str, Any]) -> None:
    """A name x86 defines itself must point at the x86 header, not a generic fall-back."""
    name = entry["name"]
    for header in X86_HEADERS:
        code = header_code(kernel_tree, header)
        assert not definition_lines(name, code), f"{name} is defined in {header}"


def test_x86_kconfig_facts(kernel_tree: Path) -> None:
    """The guard evaluation above assumes these x86_64 Kconfig facts."""
    kconfig = (kernel_tree / "arch/x86/Kconfig").read_text(encoding="utf-8")
    assert re.search(r"^\s*select GENERIC_IOMAP\b", kconfig, re.M)
    assert not re.search(r"^\s*select GENERIC_IOREMAP\b", kconfig, re.M)
    lib_kconfig = (kernel_tree / "lib/Kconfig").read_text(encoding="utf-8")
    m = re.search(r"^config INDIRECT_PIO\n(?:[ \t].*\n)*", lib_kconfig, re.M)
    assert m and "depends on ARM64" in m.group(0)


def test_out_of_line_iomap_in_lib(kernel_tree: Path) -> None:
    """iomap/_rep entries point at the declaring header; lib/iomap.c must implement them."""
    lib = strip_comments((kernel_tree / "lib/iomap.c").read_text(encoding="utf-8"))
    for e in ENTRIES:
        if e["header"] != "include/asm-generic/iomap.h":
            continue
        if re.fullmatch(r"io(?:read|write)64(?:be)?", e["name"]):
            # declared for CONFIG_64BIT but not implemented on x86: only usable through
            # io-64-nonatomic-*.h, which #define them to the _lo_hi/_hi_lo helpers
            assert not definition_lines(e["name"], lib)
            for order in ("lo-hi", "hi-lo"):
                code = header_code(kernel_tree, f"include/linux/io-64-nonatomic-{order}.h")
                assert re.search(rf"#\s*define\s+{e['name']}\s+{e['name']}_(?:lo_hi|hi_lo)\b", code)
            continue
        assert definition_lines(e["name"], lib), f"{e['name']} not implemented in lib/iomap.c"
