"""The facts cache: warm scans give the same output, changed files are parsed again."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.core.model import FileFacts, ScanResult
from mmioscan.core.ruleset import load_rules
from mmioscan.facts import cache as facts_cache
from mmioscan.facts import runner

from .helpers import copy_tree, run_cli


def _scan(root: Path, cache: Path | None, jobs: int = 1) -> ScanResult:
    return run_scan(ScanOptions(paths=(root,), jobs=jobs, cache_dir=cache), load_rules()).result


def _json(root: Path, out: Path, *extra: str) -> str:
    code = run_cli(["scan", str(root), "--format", "json", "-o", str(out), "--no-progress",
                    *extra])
    assert code == 0
    return out.read_text(encoding="utf-8")


def _sites(result: ScanResult) -> list[tuple[str, int, int, str, str, bool]]:
    return [(s.path, s.line, s.column, s.accessor, s.kind, s.active) for s in result.sites]


def test_second_scan_hits_the_cache_and_gives_identical_json(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _json(root, tmp_path / "cold.json", "--cache-dir", str(cache))
    assert (cache / "facts.sqlite3").exists()
    warm = _json(root, tmp_path / "warm.json", "--cache-dir", str(cache))
    assert warm == cold
    fresh = _json(root, tmp_path / "fresh.json", "--no-cache")
    assert fresh == cold


def test_cache_hits_are_counted(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _scan(root, cache)
    assert cold.stats.cache_hits == 0
    warm = _scan(root, cache)
    assert warm.stats.cache_hits == warm.stats.files_listed == cold.stats.files_listed
    assert _sites(warm) == _sites(cold)
    assert warm.problems == cold.problems
    assert warm.stats.files_parsed == cold.stats.files_parsed


def test_text_output_reports_cache_hits(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_tree(tmp_path / "linux")
    args = ["scan", str(root), "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    assert run_cli(args) == 0
    first = capsys.readouterr().out
    assert run_cli(args) == 0
    second = capsys.readouterr().out
    files = len(list(root.rglob("*.[ch]")))
    assert re.search(r"\b0 from cache", first)
    assert re.search(rf"\b{files} from cache", second), second


def test_changed_file_is_parsed_again(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    target = root / "drivers/bar/bar_core.c"
    before = _scan(root, cache)
    assert ("drivers/bar/bar_core.c", "ioread32") in {(s.path, s.accessor) for s in before.sites}
    text = target.read_text()
    target.write_text(text.replace("ioread32(regs + 0x0c)", "ioread16(regs + 0x0c)")
                      + "/* grown */\n")
    after = _scan(root, cache)
    assert after.stats.cache_hits == before.stats.files_listed - 1
    accessors = {s.accessor for s in after.sites if s.path == "drivers/bar/bar_core.c"}
    assert "ioread16" in accessors and "ioread32" not in accessors
    assert _sites(_scan(root, None)) == _sites(after)


def test_same_size_change_with_new_mtime_is_parsed_again(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    target = root / "drivers/bar/bar_core.c"
    _scan(root, cache)
    text = target.read_text()
    changed = text.replace("writel(1, doorbell)", "writeb(1, doorbell)")
    assert len(changed) == len(text)
    st = target.stat()
    target.write_text(changed)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    after = _scan(root, cache)
    accessors = {s.accessor for s in after.sites if s.path == "drivers/bar/bar_core.c"}
    assert "writeb" in accessors and "writel" not in accessors


def test_same_size_change_with_the_old_mtime_restored_is_parsed_again(tmp_path: Path) -> None:
    """`touch -d` (os.utime) can put the mtime back, never the ctime: the stamp must see it,
    and the warm scan must say what --no-cache says."""
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    target = root / "drivers/bar/bar_core.c"
    _json(root, tmp_path / "cold.json", "--cache-dir", str(cache))
    text = target.read_text()
    changed = text.replace("writel(1, doorbell)", "writeb(1, doorbell)")
    assert len(changed) == len(text) and changed != text
    st = target.stat()
    target.write_text(changed)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    warm = _json(root, tmp_path / "warm.json", "--cache-dir", str(cache))
    accessors = {s["accessor"] for s in json.loads(warm)["sites"]
                 if s["path"] == "drivers/bar/bar_core.c"}
    assert "writeb" in accessors and "writel" not in accessors
    assert warm == _json(root, tmp_path / "fresh.json", "--no-cache")


def _stamp_case(tmp_path: Path) -> tuple[Path, facts_cache.FactsCache, str]:
    """One file, its facts cached under the digest of its current content."""
    root = tmp_path / "src"
    root.mkdir()
    path = root / "a.c"
    path.write_bytes(b"void a(void) { readl(p); }\n")
    cache = facts_cache.FactsCache(tmp_path / "cache", "salt")
    digest = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
    cache.store([(str(path), None, digest,
                  facts_cache.encode(FileFacts("a.c", digest, 27, False)))])
    return path, cache, digest


def test_a_racy_stamp_is_verified_by_content(tmp_path: Path) -> None:
    """A stamp taken in the same timestamp tick as the file's last change cannot tell a
    later change in that tick: it is trusted only after hashing the file."""
    path, cache, digest = _stamp_case(tmp_path)
    st = os.lstat(path)
    absolute = {"a.c": str(path)}
    stale = facts_cache.Stamp.of(st, st.st_ctime_ns, "0" * 40)  # racy, and the content is not this
    assert stale.racy
    assert runner._cache_hits(absolute, {str(path): stale}, cache) == {}
    fresh = facts_cache.Stamp.of(st, st.st_ctime_ns, digest)  # racy, and the content matches
    assert set(runner._cache_hits(absolute, {str(path): fresh}, cache)) == {"a.c"}
    # renewed with the time of this look-up: once that is facts_cache.RACY_NS past the file's last
    # change, the next run takes the fast path
    renewed = cache.stamps([str(path)])[str(path)]
    assert renewed.digest == digest and renewed.taken_ns > fresh.taken_ns
    old = facts_cache.Stamp.of(st, st.st_ctime_ns + facts_cache.RACY_NS + 1, digest)
    assert not old.racy and set(runner._cache_hits(absolute, {str(path): old}, cache)) == {"a.c"}
    cache.close()


def test_a_stamp_is_size_mtime_ctime_and_inode(tmp_path: Path) -> None:
    path, cache, digest = _stamp_case(tmp_path)
    st = os.lstat(path)
    absolute = {"a.c": str(path)}
    base = facts_cache.Stamp.of(st, st.st_ctime_ns + facts_cache.RACY_NS + 1, digest)
    for field in ("size", "mtime_ns", "ctime_ns", "ino"):
        other = dataclasses.replace(base, **{field: getattr(base, field) + 1})
        assert runner._cache_hits(absolute, {str(path): other}, cache) == {}, field
    cache.close()


def test_file_that_gains_accessors_is_parsed(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    target = root / "drivers/bar/bar_nothing.c"
    before = _scan(root, cache)
    assert not [s for s in before.sites if s.path == "drivers/bar/bar_nothing.c"]
    target.write_text(target.read_text() + "\nstatic void bar_poke(void __iomem *p)\n{\n"
                      "\twritel(0, p);\n}\n")
    after = _scan(root, cache)
    assert [(s.accessor, s.function) for s in after.sites
            if s.path == "drivers/bar/bar_nothing.c"] == [("writel", "bar_poke")]


def test_copied_tree_reuses_facts_under_its_own_paths(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = copy_tree(tmp_path / "a")
    first = _scan(a, cache)
    b = copy_tree(tmp_path / "b")
    second = _scan(b, cache)
    assert _sites(second) == _sites(first)
    assert second.root == str(b.resolve())


def test_other_rules_do_not_reuse_facts(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    _scan(root, cache)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[accessor]]\nname = "inb"\nfamily = "pio"\naccess = "read"\nwidth = 8\n'
                     'header = "arch/x86/include/asm/shared/io.h"\n')
    result = run_scan(ScanOptions(paths=(root,), cache_dir=cache),
                      load_rules(accessors=rules)).result
    assert result.stats.cache_hits == 0
    # regmap sites come from rules/regmap.toml, not from the accessor catalogue; raw __iomem
    # dereferences reach no accessor
    assert {s.accessor for s in result.sites if s.kind not in ("regmap", "deref")} == {"inb"}


def test_no_cache_option_touches_no_cache(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    _json(root, tmp_path / "o.json", "--no-cache", "--cache-dir", str(cache))
    assert not cache.exists()
    result = _scan(root, None)
    assert result.stats.cache_hits == 0


def test_no_cache_after_a_warm_cache_still_parses(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    _scan(root, cache)
    assert _scan(root, None).stats.cache_hits == 0


def test_default_cache_dir_follows_xdg_cache_home(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    root = copy_tree(tmp_path / "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _json(root, tmp_path / "o.json")
    assert (tmp_path / "xdg/mmioscan/facts/facts.sqlite3").exists()


def test_unusable_cache_dir_degrades_to_a_problem(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    result = _scan(root, blocker)
    assert result.sites
    assert any("cache" in p.message for p in result.problems)


def test_corrupt_cache_file_degrades_to_a_problem_or_a_rebuild(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "facts.sqlite3").write_bytes(b"this is not sqlite" * 100)
    result = _scan(root, cache)
    assert _sites(result) == _sites(_scan(root, None))


def test_one_pool_of_workers_serves_every_batch_of_an_analysis(tmp_path: Path) -> None:
    """The rounds parse batch after batch; the pool started for the first is kept for the
    next (a pool per batch cost its workers' start each time), gives the same facts as
    parsing in this process, and is gone once closed."""
    from mmioscan.analysis.gather import extract_spec
    from mmioscan.core.ruleset import load_rules
    from mmioscan.facts.runner import Workers, collect_facts

    for i in range(40):
        (tmp_path / f"f{i}.c").write_bytes(
            b"u32 get%d(void __iomem *r)\n{\n\treturn readl(r + %d);\n}\n" % (i, i))
    files = tuple(f"f{i}.c" for i in range(40))
    rules = load_rules(None)
    spec = extract_spec(rules)
    alone = collect_facts(tmp_path, files, spec, rules.digest, 1, None)
    with Workers(spec, 2) as workers:
        first = collect_facts(tmp_path, files[:20], spec, rules.digest, workers, None)
        pool = workers._pool
        second = collect_facts(tmp_path, files[20:], spec, rules.digest, workers, None)
        assert pool is not None and workers._pool is pool
    assert workers._pool is None
    assert first.facts + second.facts == alone.facts


def test_facts_pickle_back_equal_with_their_scopes_as_scopes() -> None:
    """FileFacts pickle as their field values (FileFacts.__reduce__): every fixture file's
    facts, every field set or not, come back equal, of the same types (scopes are Scope
    NamedTuples again, not bare tuples), and through copy too."""
    import copy
    import pickle

    from mmioscan.analysis.gather import extract_spec
    from mmioscan.core.model import Scope

    from .helpers import fixture_sources

    runner._init_worker(extract_spec(load_rules(None)))
    checked = 0
    for source in fixture_sources():
        facts = runner.facts_for_bytes(source.name, source.read_bytes(), force=True)
        back = pickle.loads(pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == facts and type(back) is FileFacts
        assert all(type(s) is Scope for s in back.scopes)
        assert copy.deepcopy(facts) == facts
        checked += bool(facts.scopes)
    assert checked >= 5
    bare = FileFacts("a.c", "d", 0, parsed=False, identifiers=b"\x01\x00\x00\x00")
    assert pickle.loads(pickle.dumps(bare)) == bare
