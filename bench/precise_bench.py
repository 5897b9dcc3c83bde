#!/usr/bin/env python3
"""Both engines on the same files: files per second of each (one process, so the ratio does
not depend on the pool), and what a whole run of the precise engine under the cloud config
would cost on this machine.

The files are the .c files the cloud config builds in the crosscheck's folders
(drivers/nvme/host, drivers/virtio, drivers/net/virtio_net.c). Each engine extracts each
file once, cold (no facts cache), in this process; the fast engine parses every file, as
the clang engine does (no byte prefilter), so both do the same work.

The whole-run estimate needs the number of .c files the config builds. Counting them
exactly is a dry run of the whole tree (`--exact`, minutes of make); by default the small
top-level folders are dry-run whole and the share built of drivers/, fs/, net/ and sound/ is
estimated from a seeded random sample of their .c files (each sampled file's folder is
dry-run; a 95% interval is printed):
    cost = prepare + dry runs + built files / (clang files/s x cores)
Wall times depend on the machine and its load; the ratios are the result.
Usage: python bench/precise_bench.py [--tree PATH] [--config FILE] [--exact] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import posixpath
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout, not installed

from mmioscan.cfront.extract import Extractor  # noqa: E402
from mmioscan.clang.extract import ClangExtractor  # noqa: E402
from mmioscan.clang.flags import folder_flags, plan  # noqa: E402
from mmioscan.clang.prepare import MARKER, Prepared, prepare  # noqa: E402
from mmioscan.core.ruleset import load_rules  # noqa: E402
from mmioscan.kernel.kernelsrc import ensure_cloud_config, ensure_tree  # noqa: E402

FOLDERS = ("drivers/nvme/host", "drivers/virtio", "drivers/net/virtio_net.c")
# Top-level folders Kbuild descends into for x86 (the root Kbuild and Makefile).
WHOLE = ("arch/x86", "block", "certs", "crypto", "init", "io_uring", "ipc", "kernel", "lib",
         "mm", "security", "virt")
SAMPLED = ("drivers", "fs", "net", "sound")


def _c_files(tree: Path, folder: str) -> list[str]:
    found: list[str] = []
    for dirpath, _, names in os.walk(tree / folder):
        rel = Path(dirpath).relative_to(tree).as_posix()
        found.extend(f"{rel}/{n}" for n in names if n.endswith(".c"))
    return sorted(found)


def _scope(tree: Path) -> list[str]:
    files: list[str] = []
    for folder in FOLDERS:
        files.extend([folder] if folder.endswith(".c") else _c_files(tree, folder))
    return files


def per_file(extract: object, files: list[str], tree: Path) -> tuple[float, int]:
    """Seconds to extract every file once, and how many had facts."""
    fn = extract.extract  # type: ignore[attr-defined]
    start = time.perf_counter()
    parsed = 0
    for rel in files:
        parsed += fn(rel, "bench", (tree / rel).read_bytes()).parsed
    return time.perf_counter() - start, parsed


def built_estimate(prepared: Prepared, exact: bool, sample_size: int) -> dict[str, object]:
    tree = prepared.tree
    start = time.perf_counter()
    if exact:
        built = len(folder_flags(prepared, ".").files)
        return {"method": "dry run of the whole tree", "built": built, "low": built,
                "high": built, "dry_run_seconds": round(time.perf_counter() - start, 1)}
    built_whole = sum(len(folder_flags(prepared, f).files) for f in WHOLE)
    big = [f for top in SAMPLED for f in _c_files(tree, top)]
    sample = random.Random(1).sample(big, min(sample_size, len(big)))
    hits = sum(f in folder_flags(prepared, posixpath.dirname(f)).files for f in sample)
    share = hits / len(sample)
    margin = 1.96 * math.sqrt(share * (1 - share) / len(sample))  # 95%, normal approximation
    return {"method": f"whole {', '.join(WHOLE)}; {len(sample)} random .c files of "
                      f"{', '.join(SAMPLED)} ({hits} built)",
            "built": round(built_whole + share * len(big)),
            "low": round(built_whole + max(share - margin, 0) * len(big)),
            "high": round(built_whole + min(share + margin, 1) * len(big)),
            "built_in_whole_folders": built_whole, "c_files_sampled_from": len(big),
            "dry_run_seconds": round(time.perf_counter() - start, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--exact", action="store_true",
                        help="count the built files with a dry run of the whole tree")
    parser.add_argument("--sample", type=int, default=60,
                        help="random .c files of drivers/ fs/ net/ sound/ whose folders are "
                             "dry-run for the estimate (default: 60)")
    parser.add_argument("--json", type=Path, help="also write the figures to FILE")
    args = parser.parse_args()
    tree = (args.tree or ensure_tree()).resolve()
    config = args.config or ensure_cloud_config()
    prepared = prepare(tree, config)
    marker = json.loads((prepared.build / MARKER).read_text())
    prepare_seconds = prepared.seconds if prepared.seconds is not None else marker.get("seconds")
    built = plan(prepared, _scope(tree), FOLDERS)
    files = sorted(built.flags)
    rules = load_rules()
    names = rules.catalogue.names() | rules.regmap.init
    fast = Extractor(names, dict(rules.hot.registrations), rules.hot.fields)
    precise = ClangExtractor(names, dict(rules.hot.registrations), rules.hot.fields, str(tree),
                             built.flags.items())
    fast_s, _ = per_file(fast, files, tree)
    clang_s, parsed = per_file(precise, files, tree)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cores = os.cpu_count() or 1
    whole = built_estimate(prepared, args.exact, args.sample)
    clang_fps = len(files) / clang_s
    minutes = {k: round(int(whole[k]) / (clang_fps * cores) / 60, 1)  # type: ignore[call-overload]
               for k in ("built", "low", "high")}
    figures = {
        "files": len(files), "clang_parsed": parsed,
        "fast_files_per_second": round(len(files) / fast_s, 2),
        "clang_files_per_second": round(clang_fps, 3),
        "fast_over_clang": round(clang_s / fast_s, 1),
        "clang_seconds_per_file": round(clang_s / len(files), 2),
        "peak_rss_mb": round(peak_mb), "cores": cores,
        "prepare_seconds": prepare_seconds, "whole_config": whole,
        "whole_parse_minutes": minutes,
    }
    print(f"{len(files)} built .c files of {', '.join(FOLDERS)}")
    print(f"fast engine:  {figures['fast_files_per_second']:>8} files/s (one process)")
    print(f"clang engine: {figures['clang_files_per_second']:>8} files/s (one process, "
          f"{figures['clang_seconds_per_file']} s/file, peak RSS {figures['peak_rss_mb']} MB)")
    print(f"ratio: the fast engine is {figures['fast_over_clang']}x faster per file")
    print(f"prepare: {prepare_seconds} s (make olddefconfig prepare, once per tree and config)")
    print(f"whole cloud-config run, precise engine: ~{whole['built']} built .c files "
          f"(95%: {whole['low']}-{whole['high']}; {whole['method']})")
    print(f"  -> ~{minutes['built']} min of parsing on {cores} cores, cold "
          f"({minutes['low']}-{minutes['high']}), plus prepare and the flags' dry runs "
          f"({whole['dry_run_seconds']} s for this estimate's folders); a warm run reads the "
          "facts cache")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
