"""Patch parsing and in-memory application (mmioscan/gate/patchfile.py)."""

from __future__ import annotations

import pytest

from mmioscan.gate.patchfile import PatchError, apply, check_folders, parse, resolve, touched

FOO = "".join(f"line {i}\n" for i in range(1, 11))

PLAIN = """\
--- a/drivers/foo/foo.c
+++ b/drivers/foo/foo.c
@@ -2,6 +2,7 @@
 line 2
 line 3
 line 4
+added
 line 5
 line 6
 line 7
"""


def _apply(text: str, files: dict[str, str]) -> dict[str, bytes | None]:
    patch = parse(text, "t.patch")
    changes = resolve(patch, lambda p: p in files)
    return apply(changes, lambda p: files[p].encode() if p in files else None)


def test_plain_diff_applies_exactly() -> None:
    out = _apply(PLAIN, {"drivers/foo/foo.c": FOO})
    assert out["drivers/foo/foo.c"] == FOO.replace("line 4\n", "line 4\nadded\n").encode()


def test_offset_search_finds_moved_context() -> None:
    shifted = "new 1\nnew 2\n" + FOO
    out = _apply(PLAIN, {"drivers/foo/foo.c": shifted})
    assert b"line 4\nadded\nline 5\n" in (out["drivers/foo/foo.c"] or b"")


def test_fuzz_drops_a_changed_context_line() -> None:
    edited = FOO.replace("line 2\n", "line two\n")
    out = _apply(PLAIN, {"drivers/foo/foo.c": edited})
    assert b"line two\nline 3\nline 4\nadded\nline 5\n" in (out["drivers/foo/foo.c"] or b"")


def test_fuzz_never_reapplies_a_hunk_anchored_at_the_end() -> None:
    """Short tail context means end of file: already applied, the hunk must not apply again
    with only `{` left as context."""
    text = "a\nb\nvoid f(void)\n{\n\tg();\n}\n"
    patch = ("--- a/f.c\n+++ b/f.c\n@@ -2,5 +2,6 @@\n b\n void f(void)\n {\n+\th();\n"
             " \tg();\n }\n")
    once = _apply(patch, {"f.c": text})["f.c"]
    assert once == b"a\nb\nvoid f(void)\n{\n\th();\n\tg();\n}\n"
    with pytest.raises(PatchError, match="looks applied already"):
        _apply(patch, {"f.c": once.decode()})


def test_hunk_that_does_not_apply_names_file_and_hunk() -> None:
    with pytest.raises(PatchError, match=r"drivers/foo/foo.c: hunk #1 .* does not apply"):
        _apply(PLAIN, {"drivers/foo/foo.c": "something else\n" * 10})


def test_missing_file_is_an_error() -> None:
    with pytest.raises(PatchError, match="does not exist"):
        _apply(PLAIN, {"drivers/bar/bar.c": FOO})


def test_no_diff_at_all() -> None:
    with pytest.raises(PatchError, match="no diff found"):
        parse("Hello,\n\nplease pull.\n", "mail.txt")


def test_truncated_hunk() -> None:
    with pytest.raises(PatchError, match="ends early"):
        parse(PLAIN.rsplit("\n", 2)[0] + "\n", "t.patch")


def test_path_outside_the_tree_is_refused() -> None:
    evil = PLAIN.replace("a/drivers/foo/foo.c", "a/../../etc/passwd").replace(
        "b/drivers/foo/foo.c", "b/../../etc/passwd")
    with pytest.raises(PatchError, match="outside the tree"):
        _apply(evil, {})


FORMAT_PATCH = """\
From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001
From: A Developer <dev@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH {n}/2] foo: {subject}

Some explanation.
--- a line in the message that is no diff

---
 drivers/foo/foo.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/drivers/foo/foo.c b/drivers/foo/foo.c
index 1111111..2222222 100644
--- a/drivers/foo/foo.c
+++ b/drivers/foo/foo.c
@@ -{at},6 +{at},7 @@
 line {z}
 line {a}
 line {b}
+{added}
 line {c}
 line {d}
 line {e}
--
2.39.5

"""


def test_mbox_series_applies_in_order() -> None:
    first = FORMAT_PATCH.format(n=1, subject="one", at=2, z=2, a=3, b=4, added="first", c=5,
                                d=6, e=7)
    second = FORMAT_PATCH.format(n=2, subject="two", at=6, z=6, a=7, b=8, added="second",
                                 c=9, d=10, e=11).replace(" line 11\n", "")
    second = second.replace("@@ -6,6 +6,7 @@", "@@ -6,5 +7,6 @@")
    patch = parse(first + second, "series.mbox")
    assert patch.messages == 2
    assert [f.subject for f in patch.files] == ["[PATCH 1/2] foo: one", "[PATCH 2/2] foo: two"]
    out = apply(resolve(patch, lambda p: True), lambda p: FOO.encode())
    text = (out["drivers/foo/foo.c"] or b"").decode()
    assert "line 4\nfirst\nline 5" in text and "line 8\nsecond\nline 9" in text


def test_series_failure_names_the_mail() -> None:
    bad = FORMAT_PATCH.format(n=1, subject="broken", at=3, z=20, a=30, b=40, added="x",
                              c=50, d=60, e=70)
    with pytest.raises(PatchError, match=r"\[PATCH 1/2\] foo: broken"):
        _apply(bad, {"drivers/foo/foo.c": FOO})


NEW_DELETE_RENAME = """\
diff --git a/drivers/foo/new.c b/drivers/foo/new.c
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/drivers/foo/new.c
@@ -0,0 +1,2 @@
+int x;
+int y;
diff --git a/drivers/foo/old.c b/drivers/foo/old.c
deleted file mode 100644
index 4444444..0000000
--- a/drivers/foo/old.c
+++ /dev/null
@@ -1 +0,0 @@
-gone
diff --git a/drivers/foo/a.c b/drivers/foo/b.c
similarity index 100%
rename from drivers/foo/a.c
rename to drivers/foo/b.c
"""


def test_new_deleted_and_renamed_files() -> None:
    files = {"drivers/foo/old.c": "gone\n", "drivers/foo/a.c": "int a;\n"}
    out = _apply(NEW_DELETE_RENAME, files)
    assert out == {"drivers/foo/new.c": b"int x;\nint y;\n", "drivers/foo/old.c": None,
                   "drivers/foo/a.c": None, "drivers/foo/b.c": b"int a;\n"}
    patch = parse(NEW_DELETE_RENAME)
    assert touched(resolve(patch, lambda p: p in files)) == (
        "drivers/foo/a.c", "drivers/foo/b.c", "drivers/foo/new.c", "drivers/foo/old.c")


def test_creating_an_existing_file_is_an_error() -> None:
    with pytest.raises(PatchError, match="already exists"):
        _apply(NEW_DELETE_RENAME, {"drivers/foo/new.c": "x\n", "drivers/foo/old.c": "gone\n",
                                   "drivers/foo/a.c": ""})


def test_no_newline_at_end_of_file() -> None:
    patch = """\
--- a/f.c
+++ b/f.c
@@ -1,2 +1,2 @@
 one
-two
\\ No newline at end of file
+three
"""
    out = _apply(patch, {"f.c": "one\ntwo"})
    assert out["f.c"] == b"one\nthree\n"
    back = """\
--- a/f.c
+++ b/f.c
@@ -1,2 +1,2 @@
 one
-three
+two
\\ No newline at end of file
"""
    assert _apply(back, {"f.c": "one\nthree\n"})["f.c"] == b"one\ntwo"


def test_strip_level_zero_for_a_plain_diff_without_prefixes() -> None:
    plain = PLAIN.replace("a/drivers", "drivers").replace("b/drivers", "drivers")
    out = _apply(plain, {"drivers/foo/foo.c": FOO})
    assert "drivers/foo/foo.c" in out


def test_timestamps_after_names_are_dropped() -> None:
    dated = PLAIN.replace("a/drivers/foo/foo.c", "a/drivers/foo/foo.c\t2024-01-01 00:00")
    assert "drivers/foo/foo.c" in _apply(dated, {"drivers/foo/foo.c": FOO})


def test_quoted_names() -> None:
    quoted = PLAIN.replace("--- a/drivers/foo/foo.c", '--- "a/drivers/foo/f\\303\\266o.c"')
    quoted = quoted.replace("+++ b/drivers/foo/foo.c", '+++ "b/drivers/foo/f\\303\\266o.c"')
    assert "drivers/foo/föo.c" in _apply(quoted, {"drivers/foo/föo.c": FOO})


def test_binary_patches() -> None:
    blob = "diff --git a/{0} b/{0}\nindex 1..2 100644\nBinary files a/{0} and b/{0} differ\n"
    assert _apply(blob.format("firmware/x.bin"), {"firmware/x.bin": ""}) == {}
    with pytest.raises(PatchError, match="binary"):
        _apply(blob.format("drivers/foo/foo.c"), {"drivers/foo/foo.c": FOO})


def test_blank_context_lines_stripped_by_a_mailer() -> None:
    text = "a\n\nb\n"
    patch = "--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,4 @@\n a\n\n+x\n b\n"
    assert _apply(patch, {"f.c": text})["f.c"] == b"a\n\nx\nb\n"


def test_a_hunk_number_of_5000_digits_is_an_error() -> None:
    # int() refuses numbers of over 4,300 digits with a ValueError; no file is that long.
    huge = PLAIN.replace("@@ -2,6 +2,7 @@", f"@@ -{'9' * 5000},6 +2,{'7' * 5000} @@")
    with pytest.raises(PatchError, match=r"t.patch:3: .*line number 999999999999\.\.\. is too "
                                         "large") as info:
        parse(huge, "t.patch")
    assert len(str(info.value)) < 200


NEW_FILE = """\
diff --git a/{0} b/{0}
new file mode 100644
--- /dev/null
+++ b/{0}
@@ -0,0 +1 @@
+int x;
"""


@pytest.mark.parametrize(("name", "message"), [
    ("drivers/foo/n\0ul.c", "NUL"),
    ('"drivers/foo/n\\000ul.c"', "NUL"),
    ('"drivers/foo/f\\377\\376.c"', "not UTF-8"),
    ("drivers/foo/f\udcff.c", "not UTF-8"),  # raw bytes, read with surrogateescape
])
def test_file_names_no_tree_can_hold_are_errors(name: str, message: str) -> None:
    quoted = name.startswith('"')
    text = NEW_FILE.format(name.strip('"'))
    if quoted:
        text = text.replace(f"a/{name[1:-1]}", f'"a/{name[1:-1]}"').replace(
            f"b/{name[1:-1]}", f'"b/{name[1:-1]}"')
    with pytest.raises(PatchError, match=message):
        _apply(text, {})


def test_a_path_is_a_file_or_a_folder_never_both() -> None:
    both = NEW_FILE.format("drivers/foo/x.h") + NEW_FILE.format("drivers/foo/x.h/y.c")
    state = _apply(both, {})
    with pytest.raises(PatchError, match="x.h/y.c: cannot be created, drivers/foo/x.h is a "
                                         "file"):
        check_folders(state, lambda p: False)
    under_a_file = _apply(NEW_FILE.format("drivers/foo/foo.c/y.c"), {})
    with pytest.raises(PatchError, match="drivers/foo/foo.c is a file"):
        check_folders(under_a_file, lambda p: p == "drivers/foo/foo.c")
    check_folders(under_a_file, lambda p: False)  # no such file in the tree: fine
    deleted = {"drivers/foo/x.h": None, "drivers/foo/x.h/y.c": b"int x;\n"}
    check_folders(deleted, lambda p: p == "drivers/foo/x.h")  # the patch deletes x.h first


@pytest.mark.parametrize("tail", ["--- a/x.c\n", "--- a/x.c\nFrom x Mon Sep 17 00:00:00 2001\n"])
def test_a_git_header_whose_old_name_has_no_new_name(tail: str) -> None:
    # found by tests/unit/test_fuzz_gate_inputs.py: `---` without `+++` read past the end
    patch = parse("diff --git a/x.c b/x.c\nindex 1..2 100644\n" + tail, "t.patch")
    assert [(f.old_name, f.new_name, f.hunks) for f in patch.files] == [("a/x.c", "b/x.c", ())]


def test_a_short_octal_escape_before_another_escape() -> None:
    # found by the fuzzer: "\\03\\\\" was read as the three octal digits "03\\" (ValueError)
    assert parse('--- "a/x\\03\\\\"\n+++ "b/x"\n@@ -1 +1 @@\n-a\n+b\n', "t.patch").files[0] \
        .old_name == "a/x\x03\\"


@pytest.mark.parametrize("escaped", ["\\\udced", "\ud800", "\\\ud800"])
def test_an_escaped_undecodable_byte_in_a_quoted_name(escaped: str) -> None:
    # found by the fuzzer: a backslash before a byte that is not UTF-8 (read as a surrogate)
    text = f'--- "a/x{escaped}.c"\n+++ "b/x{escaped}.c"\n@@ -1 +1 @@\n-a\n+b\n'
    with pytest.raises(PatchError, match="not UTF-8"):
        resolve(parse(text, "t.patch"), lambda p: True)
