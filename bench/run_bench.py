#!/usr/bin/env python3
"""Benchmark mmioscan against its peers on the same tree, in the same run, as ratios.

Peers: ripgrep (a lexical lower bound: it only finds `name (` text) and Coccinelle (a real C
parser, one function at a time). Coccinelle on all of drivers/ takes well over an hour on two
cores, so it runs on a set of folders and mmioscan is timed on the same folders; mmioscan is
also timed on all of drivers/, cold (empty cache) and warm (nothing changed).

Wall times depend on the machine and its load; the ratios printed at the end are the result.
Usage: python bench/run_bench.py [--tree PATH] [--skip-coccinelle] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # a checkout, not installed

from peers import ripgrep_sites, run_coccinelle  # noqa: E402

from mmioscan.core.catalogue import load_catalogue  # noqa: E402
from mmioscan.kernel.kernelsrc import ensure_tree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COCCI_FOLDERS = ["drivers/virtio", "drivers/net/ethernet/intel/e1000e", "drivers/watchdog",
                 "drivers/i2c/busses", "drivers/tty/serial/8250"]


def _tree_rss(pid: int) -> int:
    """Resident set size in bytes of pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(children.get(p, []))
    return total


def timed(cmd: list[str]) -> tuple[float, int, dict[str, float]]:
    """Run cmd; return wall seconds, the peak RSS of its whole process tree (sampled) and the
    phase timings mmioscan printed with --timings (empty for other tools)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode(errors='replace')[-500:]}")
    return wall, peak, _phases(err.decode(errors="replace"))


def _phases(stderr: str) -> dict[str, float]:
    """`mmioscan: timings: facts 3.92s, graph 5.51s, ...` -> {"facts": 3.92, ...}."""
    for line in stderr.splitlines():
        if line.startswith("mmioscan: timings: "):
            pairs = (p.rsplit(" ", 1) for p in line.split(": ", 2)[2].split(", "))
            return {k: float(v.rstrip("s")) for k, v in pairs}
    return {}


def scan_cmd(targets: list[Path], root: Path, cache: Path | None, out: Path,
             *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "mmioscan", "scan", *map(str, targets), "--root", str(root),
           "--format", "json", "-o", str(out), "--no-progress", "--timings", *extra]
    return cmd + (["--cache-dir", str(cache)] if cache else ["--no-cache"])


# Phases that exist only because of the call graph (issue 3): their share of the full scan.
GRAPH_PHASES = ("context headers", "wrapper callers", "graph", "sites", "patch points")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, help="kernel tree (default: linux-source-6.12)")
    ap.add_argument("--skip-coccinelle", action="store_true")
    ap.add_argument("--json", type=Path, default=Path("bench/results/latest.json"))
    args = ap.parse_args()
    tree = args.tree or ensure_tree()
    names = load_catalogue().names()
    results: dict[str, object] = {"tree": str(tree), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="mmioscan-bench-") as tmp:
        out, cache = Path(tmp) / "scan.json", Path(tmp) / "cache"
        drivers = [tree / "drivers"]
        d_cold, d_rss, _ = timed(scan_cmd(drivers, tree, cache / "direct", out, "--direct-only"))
        d_warm, _, _ = timed(scan_cmd(drivers, tree, cache / "direct", out, "--direct-only"))
        cold, cold_rss, cold_phases = timed(scan_cmd(drivers, tree, cache / "full", out))
        doc = json.loads(out.read_text())
        sites = sum(1 for s in doc["sites"] if s["active"])
        warm, warm_rss, warm_phases = timed(scan_cmd(drivers, tree, cache / "full", out))
        start = time.monotonic()
        rg = ripgrep_sites(tree, ["drivers"], names)
        rg_wall = time.monotonic() - start
        graph_cold = sum(cold_phases.get(p, 0.0) for p in GRAPH_PHASES)
        peak = max(d_rss, cold_rss, warm_rss)
        results["drivers"] = {
            "direct_only_cold_s": round(d_cold, 1), "direct_only_warm_s": round(d_warm, 1),
            "full_cold_s": round(cold, 1), "full_warm_s": round(warm, 1),
            "full_cold_phases": cold_phases, "full_warm_phases": warm_phases,
            "graph_share_of_cold_scan": round(graph_cold / cold, 3),
            "peak_rss_mb": round(peak / 2**20), "ripgrep_s": round(rg_wall, 1),
            "mmioscan_sites": sites, "ripgrep_matches": len(rg),
            "files_parsed": doc["stats"]["files_parsed"]}
        print(f"drivers/ --direct-only: cold {d_cold:.1f} s, warm {d_warm:.1f} s")
        print(f"drivers/ full analysis: cold {cold:.1f} s, warm {warm:.1f} s, "
              f"{sites:,} active sites, {doc['stats']['files_parsed']:,} files parsed")
        print("  cold phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in cold_phases.items()))
        print(f"  call-graph phases: {graph_cold:.1f} s = {graph_cold / cold:.0%} of the cold scan")
        print(f"peak RSS of the whole run: {peak / 2**20:.0f} MiB")
        print(f"drivers/: ripgrep {rg_wall:.1f} s, {len(rg):,} lexical matches")
        print(f"ratio --direct-only cold / ripgrep: {d_cold / rg_wall:.1f}x; "
              f"warm / ripgrep: {d_warm / rg_wall:.1f}x")
        if not args.skip_coccinelle and shutil.which("spatch"):
            folders = [tree / f for f in COCCI_FOLDERS]
            sub_cold, _, _ = timed(scan_cmd(folders, tree, None, out, "--direct-only"))
            start = time.monotonic()
            cocci = run_coccinelle(tree, COCCI_FOLDERS, names, jobs=os.cpu_count() or 1)
            cocci_wall = time.monotonic() - start
            results["folders"] = {"folders": COCCI_FOLDERS, "mmioscan_cold_s": round(sub_cold, 1),
                                  "coccinelle_s": round(cocci_wall, 1),
                                  "coccinelle_sites": len(cocci.sites)}
            print(f"{len(COCCI_FOLDERS)} folders: mmioscan cold {sub_cold:.1f} s, "
                  f"Coccinelle {cocci_wall:.1f} s ({len(cocci.sites):,} sites)")
            print(f"ratio Coccinelle / mmioscan cold: {cocci_wall / sub_cold:.1f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
