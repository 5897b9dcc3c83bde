#!/usr/bin/env python3
"""Where people wait: cold, warm and incremental runs against ripgrep, same tree, same run.

Rows (issue "fast where people wait"): ripgrep over drivers/ (the lexical lower bound);
`mmioscan scan drivers` (full analysis) cold (empty cache), warm (nothing changed) and
incremental (one .c file changed); the whole-tree `mmioscan report` under the cloud config,
cold, warm and incremental; the gate on a one-file patch, warm; `--version` and `--help`.
Every row has its wall time, the peak RSS of the whole process tree (all workers) and its
ratio to ripgrep.

The incremental rows change one file of the tree in place (a comment appended; a function
with a register write appended) and put its bytes back afterwards, whatever happens; the
run after that is warm again (the cache is keyed by content). The outputs of the cold, warm
and incremental-then-restored runs are compared byte for byte and the comparison is printed.

Usage: python bench/speed_bench.py [--tree PATH] [--config FILE] [--skip-tree]
           [--json FILE] [--cache DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # a checkout, not installed

from run_bench import timed  # noqa: E402

from mmioscan.core.catalogue import load_catalogue  # noqa: E402
from mmioscan.kernel.kernelsrc import ensure_cloud_config, ensure_tree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CHANGED = "drivers/net/ethernet/intel/e1000e/netdev.c"  # the file an incremental run edits
MMIOSCAN = [sys.executable, "-m", "mmioscan"]


# The incremental rows' edits: a comment (no fact changes: analysis/unchanged.py answers
# from the earlier result) and a function with a register write (new facts: every stage
# after the edited file's parse runs again)
COMMENT = b"\n/* edited by bench/speed_bench.py */\n"
CODE = (b"\nstatic void bench_poke(void __iomem *base)\n{ writel(1, base + 0x10); }\n"
        b"/* added by bench/speed_bench.py */\n")


@contextlib.contextmanager
def edited(path: Path, added: bytes = COMMENT) -> Iterator[None]:
    """The file with `added` appended, its bytes and times put back on the way out."""
    data = path.read_bytes()
    st = path.stat()
    try:
        path.write_bytes(data + added)
        yield
    finally:
        path.write_bytes(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def ripgrep_cmd(tree: Path, folder: str) -> list[str]:
    exe = shutil.which("rg")
    if exe is None:
        raise SystemExit("rg not found on PATH (apt-get install ripgrep)")
    names = sorted(load_catalogue().names(), key=lambda n: (-len(n), n))
    pattern = rf"\b({'|'.join(names)})\s*\("
    return [exe, "--json", "--no-config", "--no-ignore", "-g", "*.c", "-g", "*.h", "-e",
            pattern, str(tree / folder)]


class Bench:
    def __init__(self, tree: Path, work: Path) -> None:
        self.tree, self.work = tree, work
        self.rows: list[dict[str, object]] = []

    def run(self, name: str, cmd: list[str]) -> float:
        wall, rss, phases = timed(cmd)
        self.rows.append({"row": name, "seconds": round(wall, 2), "peak_rss_mb":
                          round(rss / 2**20), "phases": phases})
        print(f"{name:<48} {wall:8.2f} s  {rss / 2**20:7.0f} MB", flush=True)
        return wall

    def scan(self, name: str, cache: Path, out: str) -> float:
        return self.run(name, [*MMIOSCAN, "scan", str(self.tree / "drivers"), "--format",
                               "json", "-o", str(self.work / out), "--no-progress",
                               "--timings", "--cache-dir", str(cache)])

    def report(self, name: str, cache: Path, config: Path, out: str) -> float:
        outs = [a for s in (".md", ".summary.json", ".html")
                for a in ("-o", str(self.work / f"{out}{s}"))]
        return self.run(name, [*MMIOSCAN, "report", str(self.tree), "--config", str(config),
                               "--platform", "all", "--no-progress", "--timings",
                               "--cache-dir", str(cache), *outs])

    def same(self, *names: str) -> bool:
        first = (self.work / names[0]).read_bytes()
        return all((self.work / n).read_bytes() == first for n in names[1:])


def _gate_patch(tree: Path, work: Path) -> Path:
    """A one-file patch on the changed file: one new register write."""
    rel = CHANGED
    lines = (tree / rel).read_text(errors="replace").splitlines()
    patch = work / "one-file.patch"
    patch.write_text(
        f"--- a/{rel}\n+++ b/{rel}\n@@ -{len(lines)},1 +{len(lines)},4 @@\n {lines[-1]}\n"
        "+static void bench_poke(void __iomem *base)\n+{ writel(1, base + 0x10); }\n"
        "+/* added by bench/speed_bench.py */\n")
    return patch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--skip-tree", action="store_true", help="no whole-tree report rows")
    ap.add_argument("--cache", type=Path, help="cache folder of the tree rows (default: a "
                    "fresh one, removed afterwards); the report rows' warm entry stays there")
    ap.add_argument("--json", type=Path, default=REPO / "bench/results/speed-latest.json")
    args = ap.parse_args()
    tree = (args.tree or ensure_tree()).resolve()
    config = args.config or ensure_cloud_config()
    with tempfile.TemporaryDirectory(prefix="mmioscan-speed-") as tmp:
        work = Path(tmp)
        bench = Bench(tree, work)
        rg = bench.run("ripgrep over drivers/", ripgrep_cmd(tree, "drivers"))
        bench.run("mmioscan --version", [*MMIOSCAN, "--version"])
        bench.run("mmioscan --help", [*MMIOSCAN, "--help"])
        drivers_cache = work / "drivers-cache"
        bench.scan("scan drivers: cold", drivers_cache, "cold.json")
        bench.scan("scan drivers: warm", drivers_cache, "warm.json")
        with edited(tree / CHANGED):
            bench.scan("scan drivers: incremental (1 .c changed: a comment)", drivers_cache,
                       "inc.json")
        with edited(tree / CHANGED, CODE):
            bench.scan("scan drivers: incremental (1 .c changed: a register write)",
                       drivers_cache, "inc-code.json")
        bench.scan("scan drivers: warm after the file is restored", drivers_cache,
                   "back.json")
        checks = {"drivers cold = warm = restored": bench.same("cold.json", "warm.json",
                                                               "back.json")}
        patch = _gate_patch(tree, work)
        gate = [*MMIOSCAN, "gate", str(tree), "--patch", str(patch), "--no-progress",
                "--timings", "--cache-dir", str(drivers_cache), "--format", "json",
                "-o", str(work / "gate.json")]
        subprocess.run(gate, cwd=REPO, capture_output=True, check=False)  # fills its cache
        bench.run("gate on a one-file patch: warm", gate)
        if not args.skip_tree:
            cache = args.cache or work / "tree-cache"
            bench.report("report whole tree --config: cold", cache, config, "tcold")
            bench.report("report whole tree --config: warm", cache, config, "twarm")
            with edited(tree / CHANGED):
                bench.report("report whole tree: incremental (1 .c changed: a comment)",
                             cache, config, "tinc")
            with edited(tree / CHANGED, CODE):
                bench.report("report whole tree: incremental (1 .c: a register write)",
                             cache, config, "tinc-code")
            bench.report("report whole tree: warm after restore", cache, config, "tback")
            for suffix in (".md", ".summary.json", ".html"):
                checks[f"tree {suffix} cold = warm = restored"] = bench.same(
                    *(f"{n}{suffix}" for n in ("tcold", "twarm", "tback")))
        print("\nratios to ripgrep over drivers/:")
        for row in bench.rows:
            print(f"  {row['row']:<48} {float(str(row['seconds'])) / rg:8.1f}x")
        for what, ok in checks.items():
            print(f"{what}: {'identical' if ok else 'DIFFERENT'}")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"tree": str(tree), "rows": bench.rows,
                                         "checks": checks}, indent=2) + "\n")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
