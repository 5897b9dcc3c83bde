#!/usr/bin/env python3
"""What the inventory costs: this checkout against a baseline revision, same tree, same run.

Issue 12 asks the whole-tree report under the cloud config to stay within 15% of the code
before the inventory work (funnels by data flow, regmap per map, references by declaration,
indirect calls, pasted definitions, hot roots). The baseline (default a1bdaa7, the last commit
before that work) is exported with `git archive` into a temporary folder and both are run
cold (each with an empty cache) and then warm, alternating, so both see the same machine
load; ripgrep over the same tree is the lexical yardstick. The ratios are the result.

Usage: python bench/cost_bench.py [--tree PATH] [--config FILE] [--baseline REV]
           [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # a checkout, not installed

from peers import ripgrep_sites  # noqa: E402
from run_bench import timed  # noqa: E402

from mmioscan.core.catalogue import load_catalogue  # noqa: E402
from mmioscan.kernel.kernelsrc import ensure_cloud_config, ensure_tree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BASELINE = "a1bdaa7"  # the commit before the inventory work of issue 12


def export(rev: str, into: Path) -> Path:
    """The package of revision rev, unpacked into `into` (no git worktree is left behind)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "mmioscan", "rules",
                           "pyproject.toml"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def report_cmd(code: Path, tree: Path, config: Path, cache: Path, out: Path) -> list[str]:
    # rules/ is the package data of mmioscan.rules; a checkout runs it from its own folder
    return [sys.executable, "-c",
            f"import sys; sys.path.insert(0, {str(code)!r}); "
            "from mmioscan.cli.main import main_entry; sys.argv[0] = 'mmioscan'; main_entry()",
            "report", str(tree), "--config", str(config), "--platform", "all",
            "--no-progress", "--timings", "--cache-dir", str(cache),
            "-o", str(out / "audit.md"), "-o", str(out / "audit.summary.json")]


def _counts(summary: Path) -> dict[str, object]:
    """What the inventory found under the config: sites per kind, counted and in files the
    config does not build (the summary JSON's stats)."""
    stats = json.loads(summary.read_text(encoding="utf-8"))["stats"]
    return {"sites": stats.get("sites"), "by_kind": stats.get("by_kind"),
            "unreachable_sites": stats.get("unreachable_sites"),
            "files_parsed": stats.get("files_parsed")}


def _drivers_kinds(code: Path, tree: Path, cache: Path, out: Path) -> dict[str, int]:
    """Active sites per kind of a full scan of drivers/ (from the run's warm cache)."""
    target = out / "drivers.json"
    cmd = [*report_cmd(code, tree, tree, cache, out)[:3], "scan", str(tree / "drivers"),
           "--root", str(tree), "--format", "json", "-o", str(target), "--no-progress",
           "--cache-dir", str(cache)]
    subprocess.run(cmd, check=True, capture_output=True)
    kinds: dict[str, int] = {}
    for site in json.loads(target.read_text(encoding="utf-8"))["sites"]:
        if site["active"]:
            kinds[site["kind"]] = kinds.get(site["kind"], 0) + 1
    target.unlink()
    return dict(sorted(kinds.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, help="kernel tree (default: linux-source-6.12)")
    ap.add_argument("--config", type=Path, help=".config (default: Debian's cloud-amd64)")
    ap.add_argument("--baseline", default=BASELINE)
    ap.add_argument("--rounds", type=int, default=1, help="cold+warm pairs per version")
    ap.add_argument("--json", type=Path, default=Path("bench/results/cost.json"))
    args = ap.parse_args()
    tree = args.tree or ensure_tree()
    config = args.config or ensure_cloud_config()
    results: dict[str, object] = {"tree": str(tree), "baseline": args.baseline}
    with tempfile.TemporaryDirectory(prefix="mmioscan-cost-") as tmp_name:
        tmp = Path(tmp_name)
        versions = {"baseline": export(args.baseline, tmp / "baseline"), "current": REPO}
        runs: dict[str, dict[str, list[float]]] = {v: {"cold": [], "warm": [], "rss": []}
                                                   for v in versions}
        phases: dict[str, dict[str, float]] = {}
        counts: dict[str, dict[str, object]] = {}
        for r in range(args.rounds):
            for name, code in versions.items():
                cache, out = tmp / f"cache-{name}-{r}", tmp / f"out-{name}"
                out.mkdir(exist_ok=True)
                cold, rss, cold_phases = timed(report_cmd(code, tree, config, cache, out))
                warm, _, _ = timed(report_cmd(code, tree, config, cache, out))
                runs[name]["cold"].append(cold)
                runs[name]["warm"].append(warm)
                runs[name]["rss"].append(rss / 2**20)
                phases[name] = cold_phases
                counts[name] = _counts(out / "audit.summary.json")
                counts[name]["drivers"] = _drivers_kinds(code, tree, cache, out)
                print(f"{name}: cold {cold:.1f} s, warm {warm:.1f} s, peak RSS "
                      f"{rss / 2**20:.0f} MiB", flush=True)
                print("  cold phases: " + ", ".join(f"{k} {v:.1f}s"
                                                    for k, v in cold_phases.items()))
        start = time.monotonic()
        ripgrep_sites(tree, ["."], load_catalogue().names())
        rg = time.monotonic() - start
    best = {v: {k: min(xs) for k, xs in r.items()} for v, r in runs.items()}
    results.update(runs=runs, best=best, phases=phases, counts=counts, ripgrep_s=round(rg, 1))
    for name, found in counts.items():
        print(f"{name} inventory under the config: {found}")
    for kind in ("cold", "warm"):
        ratio = best["current"][kind] / best["baseline"][kind]
        results[f"{kind}_ratio"] = round(ratio, 3)
        print(f"{kind}: current {best['current'][kind]:.1f} s / baseline "
              f"{best['baseline'][kind]:.1f} s = {ratio:.2f}x "
              f"(ripgrep {rg:.1f} s: current {best['current'][kind] / rg:.1f}x ripgrep)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
