"""x86 confidential guests whose MMIO traps to a handler that decodes the instruction:
Intel TDX (#VE) and AMD SEV-ES/SNP (#VC). docs/domain.md, "Other confidential guests".

Both share arch/x86/lib/insn-eval.c's insn_decode_mmio and differ where verdicts live:
- whether the handler emulates MOVS (SEV's vc_handle_mmio_movs) or rejects it (TDX);
- whether string port I/O is emulated (SEV's vc_handle_ioio) or rejected (TDX's handle_io);
- whether CC_ATTR_GUEST_UNROLL_STRING_IO holds (TDX yes, SEV-ES/SNP no, arch/x86/coco/core.c),
  which picks the branch memcpy_toio/memcpy_fromio/memset_io take in arch/x86/lib/iomem.c;
- on SEV, memset_io falls back to memset: REP STOSB on CPUs with FSRS
  (arch/x86/lib/memset_64.S), which the decoder does not handle, a MOV loop otherwise.

Each fact is read from the scanned tree where it can be; rules/platforms.toml is the fallback,
and `sources` says which decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from mmioscan.cfront.ctext import clean_text, function_definitions
from mmioscan.core.model import TdxPath
from mmioscan.core.rules_path import rules_dir
from mmioscan.core.toml import RuleError, read_toml

DECODER_FILE = "arch/x86/lib/insn-eval.c"
COCO_CORE = "arch/x86/coco/core.c"
MEMSET_S = "arch/x86/lib/memset_64.S"
# Where each platform's handlers live, newest layout first (older trees: arch/x86/kernel/).
HANDLER_FILES = {
    "tdx": ("arch/x86/coco/tdx/tdx.c",),
    "sev-snp": ("arch/x86/coco/sev/core.c", "arch/x86/kernel/sev.c"),
}
IOIO_FILES = ("arch/x86/coco/sev/shared.c", "arch/x86/kernel/sev-shared.c",
              "arch/x86/coco/sev/core.c", "arch/x86/kernel/sev.c")
PLATFORM_FILES = (DECODER_FILE, COCO_CORE, MEMSET_S,
                  *dict.fromkeys(f for files in HANDLER_FILES.values() for f in files),
                  *IOIO_FILES)
_VENDOR_FN = {"tdx": "intel_cc_platform_has", "sev-snp": "amd_cc_platform_has"}
_MAX_FILE = 4_000_000

NAMES = ("tdx", "sev-snp")
ALIASES = {"sev-es": "sev-snp"}  # the same #VC handler and decoder: one model


@dataclass(frozen=True, slots=True)
class Platform:
    """What one kind of guest does with a trapped MMIO or port I/O instruction."""

    name: str
    trap: str  # "#VE" or "#VC"
    hypercall: str  # what a patched funnel issues instead: "TDVMCALL", "GHCB MMIO exit"
    mmio_handler: str  # "arch/x86/coco/tdx/tdx.c:handle_mmio"
    io_handler: str
    movs_handler: str | None  # the function that emulates MOVS, None when MOVS is rejected
    string_io: bool  # string port I/O (REP INS/OUTS) is emulated
    unroll_string_io: bool  # CC_ATTR_GUEST_UNROLL_STRING_IO holds
    movs_exits: int  # traps per MOVS element: the MOVS itself plus a nested one on the MMIO side
    memset_stos_feature: str | None  # memset is REP STOSB on CPUs with this feature (FSRS)
    decoder: str = f"{DECODER_FILE}:insn_decode_mmio"
    sources: tuple[tuple[str, str], ...] = ()  # (fact, "tree:<file>" or "catalogue")

    def path_of(self, insn: str) -> TdxPath:
        """What the handler does with an instruction form."""
        if insn in ("mov", "port-io"):
            return "ve"
        if insn == "movs":
            return "ve" if self.movs_handler is not None else "unsupported"
        if insn == "string-port-io":
            return "ve" if self.string_io else "unsupported"
        return "unsupported"  # stos, movdir64b, enqcmds, movsxd, compiler-chosen

    def consequence(self, insn: str) -> str:
        """The handler and decoder code that decide the form, in words."""
        dec = self.decoder
        if insn == "mov":
            return f"a MOV that {dec} decodes and {self.mmio_handler} emulates"
        if insn == "port-io":
            return (f"port I/O (IN/OUT): trapped and emulated by {self.io_handler}, not by "
                    "the MMIO decoder")
        if insn == "movs":
            if self.movs_handler is not None:
                return (f"MOVS: {dec} returns INSN_MMIO_MOVS, emulated by "
                        f"{self.movs_handler} one element per {self.trap}, plus a nested "
                        f"{self.trap} on the MMIO side")
            return f"MOVS: {dec} returns INSN_MMIO_MOVS, which {self.mmio_handler} rejects (oops)"
        if insn == "string-port-io":
            if self.string_io:
                return f"string port I/O (REP INS/OUTS): emulated by {self.io_handler}"
            return f"string port I/O (REP INS/OUTS): {self.io_handler} rejects it (oops)"
        if insn == "compiler-chosen":
            return ("the compiler picks the instructions (MOVS, STOS, vector or ALU forms are "
                    f"possible), which {dec} may not decode: {self.mmio_handler} cannot "
                    "emulate them (oops)")
        name = {"stos": "STOS", "movdir64b": "MOVDIR64B", "enqcmds": "ENQCMDS",
                "movsxd": "MOVSXD"}.get(insn, insn)
        return (f"{name}: {dec} returns INSN_MMIO_DECODE_FAILED, {self.mmio_handler} cannot "
                f"handle the {self.trap} (oops)")


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


# ---- the shipped facts: rules/platforms.toml ------------------------------------------------

_FIELDS = {"trap", "hypercall", "mmio_handler", "io_handler", "movs_handler", "string_io",
           "unroll_string_io", "movs_exits", "memset_stos_feature"}


def load_catalogue(path: Path | None = None) -> dict[str, Platform]:
    path = path or rules_dir() / "platforms.toml"
    data, _ = read_toml(path)
    table = data.get("platform")
    if not isinstance(table, dict) or not table:
        raise RuleError(f"{path}: no [platform.NAME] tables")
    found: dict[str, Platform] = {}
    for name, raw in table.items():
        if not isinstance(raw, dict) or set(raw) - _FIELDS or not {
                "trap", "hypercall", "mmio_handler", "io_handler"} <= set(raw):
            raise RuleError(f"{path.name}: [platform.{name}]: fields are {sorted(_FIELDS)}")
        movs = raw.get("movs_handler") or None
        feature = raw.get("memset_stos_feature") or None
        found[name] = Platform(
            name, str(raw["trap"]), str(raw["hypercall"]), str(raw["mmio_handler"]),
            str(raw["io_handler"]), None if movs is None else str(movs),
            bool(raw.get("string_io", False)), bool(raw.get("unroll_string_io", False)),
            int(raw.get("movs_exits", 1)), None if feature is None else str(feature),
            sources=tuple((f, "catalogue") for f in sorted(_FIELDS)))
    return found


# ---- reading the facts from the tree -------------------------------------------------------


def _read(root: Path, rel: str) -> str | None:
    path = root / rel
    try:
        if not path.is_file() or path.stat().st_size > _MAX_FILE:
            return None
        return clean_text(path.read_bytes().decode("utf-8", "replace"))
    except OSError:
        return None


def _body(text: str, file: str, name: str) -> str | None:
    return next((d.body for d in function_definitions(text, file) if d.name == name), None)


def _find(root: Path, files: tuple[str, ...], function: str) -> tuple[str, str] | None:
    """(file, body) of the first file among `files` that defines function."""
    for rel in files:
        text = _read(root, rel)
        if text is not None:
            body = _body(text, rel, function)
            if body is not None:
                return rel, body
    return None


def _case_value(body: str, label: str) -> str | None:
    """The expression a switch returns for `case label:` (after any fall-through labels)."""
    m = re.search(r"\bcase\s+" + re.escape(label) + r"\s*:(?:\s*case\s+\w+\s*:)*\s*return\s+"
                  r"([^;]*);", body)
    return None if m is None else " ".join(m.group(1).split())


def _movs_handler(body: str, file: str) -> str | None | bool:
    """The function the handler calls for INSN_MMIO_MOVS; None when the case falls into the
    failure path; False when the handler does not name INSN_MMIO_MOVS at all."""
    m = re.search(r"\bcase\s+INSN_MMIO_MOVS\s*:\s*(?:(?:\w+\s*=\s*)?(\w+)\s*\(|case\b)", body)
    if m is None:
        return False
    return f"{file}:{m.group(1)}" if m.group(1) else None


def _derive(root: Path, base: Platform) -> Platform:
    """The platform as the tree defines it; facts the tree does not show stay the base's."""
    p, sources = base, dict(base.sources)
    handler = _find(root, HANDLER_FILES.get(base.name, ()),
                    "handle_mmio" if base.name == "tdx" else "vc_handle_mmio")
    if handler is not None:
        file, body = handler
        entry = 'handle_mmio' if p.name == 'tdx' else 'vc_handle_mmio'
        p = replace(p, mmio_handler=f"{file}:{entry}")
        movs = _movs_handler(body, file)
        if movs is not False:
            p = replace(p, movs_handler=movs if isinstance(movs, str) else None)
            sources["movs_handler"] = f"tree:{file}"
        sources["mmio_handler"] = f"tree:{file}"
    io_name = "handle_io" if p.name == "tdx" else "vc_handle_ioio"
    io = _find(root, HANDLER_FILES["tdx"] if p.name == "tdx" else IOIO_FILES, io_name)
    if io is not None:
        file, body = io
        p = replace(p, io_handler=f"{file}:{io_name}")
        if p.name == "tdx":
            string_io = not re.search(r"VE_IS_IO_STRING\s*\([^)]*\)\s*\)\s*return\s+-", body)
        else:
            string_io = "IOIO_TYPE_STR" in body or "string" in body
        p = replace(p, string_io=string_io)
        sources["io_handler"] = sources["string_io"] = f"tree:{file}"
    core = _read(root, COCO_CORE)
    vendor = _body(core, COCO_CORE, _VENDOR_FN[p.name]) if core is not None else None
    value = _case_value(vendor, "CC_ATTR_GUEST_UNROLL_STRING_IO") if vendor else None
    if value is not None:
        # SEV: "SEV_ENABLED && !SEV_ES_ENABLED": plain SEV unrolls, SEV-ES/SNP do not.
        unroll = value == "true" or (value != "false" and "!" not in value)
        p = replace(p, unroll_string_io=unroll)
        sources["unroll_string_io"] = f"tree:{COCO_CORE}"
    memset = _read(root, MEMSET_S)
    if memset is not None:
        m = re.search(r"ALTERNATIVE\s+\"jmp\s+memset_orig\"\s*,\s*\"\"\s*,\s*X86_FEATURE_(\w+)",
                      memset)
        if m is not None and re.search(r"\brep\s+stosb\b", memset):
            p = replace(p, memset_stos_feature=m.group(1))
            sources["memset_stos_feature"] = f"tree:{MEMSET_S}"
    return replace(p, sources=tuple(sorted(sources.items())))


def derive_platforms(root: Path | None, names: tuple[str, ...],
                     catalogue: Path | None = None) -> tuple[Platform, ...]:
    """The named platforms, read from the tree at root (None: the catalogue only)."""
    shipped = load_catalogue(catalogue)
    out = []
    for name in names:
        base = shipped[canonical(name)]
        out.append(base if root is None else _derive(root, base))
    return tuple(out)
