"""The layout's promises (docs/design.md): one home per fact, stages that import one way, a
command line that loads no analysis for --version and --help, modules of a readable size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from mmioscan.cli.options import DEFAULT_STRATEGY as CLI_DEFAULT
from mmioscan.core.sources import closure
from mmioscan.gate.gitrev import DiskSource, needed_paths
from mmioscan.platforms import tree_files
from mmioscan.platforms.strategies import DEFAULT_STRATEGY, load_strategies
from mmioscan.platforms.x86.model import TREE_FILES

PACKAGE = Path(__file__).resolve().parents[2] / "mmioscan"
HEAVY = ("tree_sitter", "tree_sitter_c", "networkx", "kconfiglib")


def test_every_file_a_platform_model_reads_is_materialised_by_the_gate(tmp_path: Path) -> None:
    """The gate scans a copy of the tree: a file the TDX model reads that the copy lacks
    would silently turn tree-derived forms into catalogue ones (pre-6.10 trees keep
    __iowrite32_copy in arch/x86/lib/iomap_copy_64.S)."""
    assert set(TREE_FILES) <= set(tree_files())
    for rel in tree_files():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("/* model input */\n")
    (tmp_path / "drivers/foo").mkdir(parents=True)
    (tmp_path / "drivers/foo/foo.c").write_text("int x;\n")
    contents = needed_paths(DiskSource(tmp_path), ["drivers/foo"])
    missing = [rel for rel in tree_files() if rel not in contents]
    assert not missing, f"not materialised for the gate: {missing}"


def test_the_default_strategy_is_one_name() -> None:
    assert CLI_DEFAULT == DEFAULT_STRATEGY
    assert DEFAULT_STRATEGY in load_strategies()


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["scan", "--help"],
                                  ["gate", "--help"]])
def test_version_and_help_load_no_analysis(argv: list[str]) -> None:
    code = ("import sys\n"
            "from mmioscan.cli.main import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('LOADED:' + ' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{HEAVY!r} or m.startswith(('mmioscan.analysis', 'mmioscan.cfront.extract',"
            " 'mmioscan.gate.', 'mmioscan.kernel.kconfig')))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PACKAGE.parent, check=True)
    loaded = done.stdout.rsplit("LOADED:", 1)[1].strip()
    assert loaded == "", f"{argv}: loaded {loaded}"


def test_the_package_root_holds_only_the_entry_points() -> None:
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]


def test_no_module_is_long_without_saying_why() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > 650 and "long because" not in doc:
            long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
    assert not long


def test_core_and_cfront_import_nothing_above_them() -> None:
    """The lower layers never reach into the stages that use them."""
    for root in ("mmioscan.cfront.extract", "mmioscan.cfront.iomem", "mmioscan.core.model",
                 "mmioscan.core.findings", "mmioscan.cfront.ctext"):
        above = [p for p in closure(root)
                 if p.relative_to(PACKAGE).parts[0] not in ("core", "cfront", "__init__.py")]
        assert not above, f"{root} imports {above}"


def test_the_facts_cache_key_covers_the_extractor_modules() -> None:
    """Derived from imports: the C front end and the records are in it, the analysis is not."""
    names = {p.relative_to(PACKAGE).as_posix() for p in closure("mmioscan.facts.runner")}
    assert {"cfront/extract.py", "cfront/preprocess.py", "core/model.py",
            "facts/runner.py", "facts/cache.py"} <= names
    assert not any(n.startswith(("analysis/", "report/", "gate/", "cli/")) for n in names)


def test_every_package_is_installed() -> None:
    """pyproject lists packages by hand (rules/ is mapped to mmioscan.rules): a subpackage
    missing there is absent from a `pip install .` (mmioscan.platforms.x86 once was: every
    installed `mmioscan report` died on import while the tests, run from the checkout, passed)."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts)
             for p in (root / "mmioscan").rglob("__init__.py")}
    assert found - listed == set()
