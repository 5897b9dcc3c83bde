"""clang/flags.py: Kbuild's compile commands read from a dry run, turned into clang's."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from mmioscan.clang import flags
from mmioscan.clang.flags import FolderFlags, clang_args, compile_command, parse_dry_run, plan
from mmioscan.clang.prepare import Prepared

TREE = Path("/src/linux")
BUILD = Path("/cache/prepared/6.12-abc")


def _dry_run_line(words: list[str], obj: str) -> str:
    """A `make V=1 -n` recipe line of the shape Kbuild prints (echo, traps, the command)."""
    command = " ".join(shlex.quote(w) for w in ["gcc", *words])
    return (f"set -e; echo '# CC [M]  {obj}'; echo '  {command}'; "
            f"trap 'rm -f {obj}; trap - HUP; kill -s HUP $$' HUP; {command} ; "
            f"scripts/basic/fixdep {obj}.d {obj} 'gcc' > {obj}.cmd")


WORDS = ["-Wp,-MMD,drivers/foo/.bar.o.d", "-nostdinc", f"-I{TREE}/arch/x86/include",
         "-I./arch/x86/include/generated", "-include", f"{TREE}/include/linux/kconfig.h",
         "-D__KERNEL__", "-std=gnu11", "-fshort-wchar", "-mno-sse", "-mcmodel=kernel",
         "-fconserve-stack", "-mindirect-branch=thunk-extern", "-mpreferred-stack-boundary=3",
         "-O2", "-pg", "-Wall", "-Wno-maybe-uninitialized", "-g", "-Idrivers/foo",
         "-DMODULE", '-DKBUILD_BASENAME="bar"', '-DKBUILD_MODNAME="foo"',
         "-D__KBUILD_MODNAME=kmod_foo", "-c", "-o", "drivers/foo/bar.o",
         f"{TREE}/drivers/foo/bar.c"]


def test_the_compile_command_of_a_dry_run_line() -> None:
    found = compile_command(_dry_run_line(WORDS, "drivers/foo/bar.o"))
    assert found is not None
    source, args = found
    assert source == f"{TREE}/drivers/foo/bar.c"
    assert '-DKBUILD_MODNAME="foo"' in args and "-DMODULE" in args  # shell quoting undone


def test_lines_that_compile_nothing_are_not_commands() -> None:
    assert compile_command("make -f scripts/Makefile.build obj=drivers/foo") is None
    assert compile_command("gcc -E -D__GENKSYMS__ -c -o x.o x.c") is None  # preprocessing
    assert compile_command("echo 'unbalanced") is None


def test_gcc_only_options_are_dropped_and_paths_made_absolute(tmp_path: Path) -> None:
    shim = tmp_path / "shim.h"
    args = clang_args(WORDS[:-1], BUILD, shim)
    for gone in ("-fconserve-stack", "-mindirect-branch=thunk-extern", "-O2", "-pg", "-g",
                 "-Wall", "-mpreferred-stack-boundary=3", "-mcmodel=kernel", "-c", "-o",
                 "drivers/foo/bar.o", "-Wp,-MMD,drivers/foo/.bar.o.d"):
        assert gone not in args
    for kept in ("-nostdinc", "-D__KERNEL__", "-std=gnu11", "-fshort-wchar", "-mno-sse",
                 "-DMODULE", '-DKBUILD_MODNAME="foo"', f"-I{TREE}/arch/x86/include"):
        assert kept in args
    assert f"-I{BUILD}/arch/x86/include/generated" in args
    assert f"-I{BUILD}/drivers/foo" in args
    assert args[args.index("-include") + 1] == f"{TREE}/include/linux/kconfig.h"
    assert args[-4:-2] == ("-include", str(shim))  # after the kernel's own pre-includes
    assert args[0] == "--target=x86_64-linux-gnu"


def test_a_dry_run_gives_the_folders_visited_and_the_files_built() -> None:
    text = "\n".join([
        "make -f /src/linux/scripts/Makefile.build obj=drivers/foo need-builtin=1",
        _dry_run_line(WORDS, "drivers/foo/bar.o"),
        _dry_run_line([*WORDS[:-1], "/elsewhere/x.c"], "x.o"),
        "set -e; echo '# LD [M]  drivers/foo/foo.o'",
    ])
    visited, files = parse_dry_run(text, TREE, BUILD, None)
    assert visited == ("drivers/foo",)
    assert list(files) == ["drivers/foo/bar.c"]


def test_one_dry_run_per_scanned_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake(prepared: Prepared, folder: str) -> FolderFlags:
        asked.append(folder)
        built = {"drivers/foo": {"drivers/foo/a.c": ("-DA",), "drivers/foo/sub/b.c": ("-DB",)},
                 "drivers/net": {"drivers/net/virtio_net.c": ("-DV",)}}
        return FolderFlags(folder, (folder,), built.get(folder, {}))

    monkeypatch.setattr(flags, "folder_flags", fake)
    prepared = Prepared(TREE, BUILD, "k", "6.12", "c")
    files = ["drivers/foo/a.c", "drivers/foo/sub/b.c", "drivers/foo/sub/off.c",
             "drivers/foo/a.h", "drivers/net/virtio_net.c"]
    got = plan(prepared, files, ["drivers/foo", "drivers/net/virtio_net.c"])
    assert asked == ["drivers/foo", "drivers/net"]  # drivers/foo/sub: inside drivers/foo
    assert got.flags == {"drivers/foo/a.c": ("-DA",), "drivers/foo/sub/b.c": ("-DB",),
                         "drivers/net/virtio_net.c": ("-DV",)}
    assert got.not_built == ("drivers/foo/sub/off.c",)


def test_the_dry_run_is_cached_in_the_prepared_build(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    prepared = Prepared(TREE, tmp_path, "k", "6.12", "c")
    calls: list[list[str]] = []

    class Done:
        returncode = 0
        stdout = _dry_run_line(WORDS, "drivers/foo/bar.o")
        stderr = ""

    def run(command: list[str], **_: object) -> Done:
        calls.append(command)
        return Done()

    monkeypatch.setattr(flags.subprocess, "run", run)
    first = flags.folder_flags(prepared, "drivers/foo")
    second = flags.folder_flags(prepared, "drivers/foo")
    assert len(calls) == 1 and calls[0][-4:] == ["drivers/foo/", "V=1", "-n", "-s"]
    assert first.files == second.files and "drivers/foo/bar.c" in first.files


def test_a_failed_dry_run_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        returncode = 2
        stdout = ""
        stderr = "make[1]: *** No rule to make target 'drivers/nope/'.  Stop.\n"

    monkeypatch.setattr(flags.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(flags.FlagsError, match="No rule to make target"):
        flags.folder_flags(Prepared(TREE, tmp_path, "k", "6.12", "c"), "drivers/nope")
