"""`mmioscan crosscheck` output: JSON (the contract, README "crosscheck") and text."""

from __future__ import annotations

import json

from mmioscan import __version__
from mmioscan.analysis.crosscheck import CrossCheck


def as_dict(result: CrossCheck) -> dict[str, object]:
    kinds: dict[str, object] = {}
    used: set[str] = set()
    for name, count in result.kinds.items():
        causes = [{"side": side, "cause": cause, "count": n}
                  for (side, cause), n in sorted(count.causes.items())]
        used.update(c for _, c in count.causes)
        kinds[name] = {"both": count.both, "fast_only": count.fast_only,
                       "clang_only": count.clang_only, "agreement": count.agreement,
                       "causes": causes, "examples": count.examples}
    return {
        "tool": f"mmioscan {__version__}", "root": result.root, "kinds": kinds,
        "files": len(result.files), "compared": list(result.files),
        "not_built": list(result.not_built),
        "failed": [{"path": p.path, "message": p.message} for p in result.failed],
        "causes": {c.id: {"explanation": c.explanation, "lesson": c.lesson}
                   for c in result.causes if c.id in used},
    }


def render_json(result: CrossCheck) -> str:
    return json.dumps(as_dict(result), indent=2, sort_keys=True) + "\n"


def render_text(result: CrossCheck) -> str:
    lines = [f"crosscheck of {len(result.files)} built .c file(s) (fast engine vs clang); "
             f"{len(result.not_built)} not built by the .config, {len(result.failed)} with "
             "clang errors", "",
             f"{'kind':<10} {'both':>7} {'fast only':>10} {'clang only':>11} {'agreement':>10}"]
    for name, count in result.kinds.items():
        lines.append(f"{name:<10} {count.both:>7} {count.fast_only:>10} {count.clang_only:>11}"
                     f" {count.agreement * 100:>9.2f}%")
    explained = {c.id: c for c in result.causes}
    for name, count in result.kinds.items():
        if not count.causes:
            continue
        lines += ["", f"{name}: disagreements by cause"]
        for (side, cause), n in sorted(count.causes.items()):
            lines.append(f"  {n:>5} {side}-only  {cause}: {explained[cause].explanation}")
            if explained[cause].lesson:
                lines.append(f"        fast engine: {explained[cause].lesson}")
            for ex in count.examples:
                if ex["side"] == side and ex["cause"] == cause:
                    lines.append(f"        e.g. {ex['path']}:{ex['line']}:{ex['column']} "
                                 f"{ex['callee']} in {ex['function'] or '(file scope)'}")
                    break
    for problem in result.failed:
        lines.append(f"clang: {problem.path}: {problem.message}")
    return "\n".join(lines) + "\n"
