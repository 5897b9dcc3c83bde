"""Patches in, patched file contents out: `git format-patch` files, mbox series, plain diffs.

Pure Python, so the gate needs neither patch(1) nor a work tree to apply to: the hunks are
applied in memory to the files they touch, read through a callback. Matching follows
patch(1): the context must match exactly, first at the line the hunk names, then at the
nearest offset either way; failing that, with up to two lines of context dropped at each end
(fuzz). Anything that does not parse or apply is a PatchError naming the patch, the file and
the hunk.
"""

from __future__ import annotations

import email
import email.policy
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message

MAX_FUZZ = 2
MAX_DIGITS = 10  # of a line number or count in a hunk header
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_MBOX_FROM_RE = re.compile(r"^From \S+ .*$", re.MULTILINE)
_ENCODED_RE = re.compile(r"^Content-Transfer-Encoding:\s*(base64|quoted-printable)",
                         re.IGNORECASE | re.MULTILINE)
_MULTIPART_RE = re.compile(r"^Content-Type:\s*multipart/", re.IGNORECASE | re.MULTILINE)
_SUBJECT_RE = re.compile(r"^Subject:\s*(.*)$", re.MULTILINE)
_OCTAL_RE = re.compile(r"[0-7]{1,3}")
_QUOTE_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f",
                  "r": "\r", '"': '"', "\\": "\\"}


class PatchError(Exception):
    """The patch does not parse or does not apply; the message is one line."""


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[str, ...]  # each begins with " ", "-" or "+"
    old_no_eol: bool = False  # "\ No newline at end of file" after the old side's last line
    new_no_eol: bool = False
    line: int = 0  # of the @@ header in the patch file (1-based), for messages

    def old(self) -> list[str]:
        return [t[1:] for t in self.lines if t[0] != "+"]

    def new(self) -> list[str]:
        return [t[1:] for t in self.lines if t[0] != "-"]


@dataclass(frozen=True, slots=True)
class FilePatch:
    """The changes to one file, with names as written (a/ and b/ prefixes kept)."""

    old_name: str | None  # None: /dev/null, a new file
    new_name: str | None  # None: /dev/null, a deleted file
    hunks: tuple[Hunk, ...] = ()
    binary: bool = False
    copy: bool = False  # `copy from`/`copy to`: the old file stays
    line: int = 0
    subject: str = ""  # of the mail it came in, for messages
    mode: str | None = None  # `new file mode`/`new mode` (120000: a symlink), else unchanged


@dataclass(frozen=True, slots=True)
class Patch:
    files: tuple[FilePatch, ...]
    messages: int  # mails in the series (1 for a plain diff)
    name: str = "patch"


@dataclass(frozen=True, slots=True)
class Change:
    """A file patch with its tree paths resolved (prefixes stripped)."""

    old: str | None
    new: str | None
    patch: FilePatch = field(compare=False)


# ---- parsing -------------------------------------------------------------------------------


def parse(text: str, name: str = "patch") -> Patch:
    """Every file patch in the text, in order; PatchError when there is none."""
    files: list[FilePatch] = []
    chunks = list(_messages(text))
    for offset, subject, body in chunks:
        files.extend(_DiffParser(body, offset, subject, name).run())
    if not files:
        raise PatchError(f"{name}: no diff found (expected a unified diff, a git "
                         "format-patch file or an mbox of patches)")
    return Patch(tuple(files), max(len(chunks), 1), name)


def _messages(text: str) -> Iterator[tuple[int, str, str]]:
    """(line offset, subject, text) per mail of an mbox; the whole text when it is no mbox.
    Mails whose body is base64 or quoted-printable are decoded first."""
    starts = [m.start() for m in _MBOX_FROM_RE.finditer(text)] if text.startswith("From ") \
        else []
    if not starts:
        yield 0, "", text
        return
    bounds = [*starts, len(text)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        chunk = text[start:end]
        head = chunk.split("\n\n", 1)[0]
        subject_match = _SUBJECT_RE.search(head)
        subject = subject_match.group(1).strip() if subject_match else ""
        offset = text.count("\n", 0, start)
        if _ENCODED_RE.search(chunk) or _MULTIPART_RE.search(head):
            yield offset, subject, _decoded_body(chunk)
        else:
            yield offset, subject, chunk


def _decoded_body(chunk: str) -> str:
    """The text parts of one mail, transfer encoding undone (line numbers are then only
    approximate, which messages accept)."""
    message = email.message_from_string(chunk.split("\n", 1)[1], policy=email.policy.compat32)
    texts: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        texts.append(_part_text(part))
    return "\n".join(texts)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "surrogateescape")
    except LookupError:
        return payload.decode("utf-8", "surrogateescape")


class _DiffParser:
    """A line-by-line state machine over one mail (or one plain diff)."""

    def __init__(self, text: str, offset: int, subject: str, name: str) -> None:
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.offset, self.subject, self.name = offset, subject, name
        self.i = 0
        self.files: list[FilePatch] = []

    def where(self, index: int) -> str:
        return f"{self.name}:{self.offset + index + 1}"

    def run(self) -> list[FilePatch]:
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.startswith("diff --git "):
                self.files.append(self._git_file())
            elif line.startswith("--- ") and self._peek(1).startswith("+++ "):
                self.files.append(self._plain_file())
            else:
                self.i += 1
        return self.files

    def _peek(self, ahead: int) -> str:
        j = self.i + ahead
        return self.lines[j] if j < len(self.lines) else ""

    def _git_file(self) -> FilePatch:
        start = self.i
        old: str | None
        new: str | None
        old, new = _git_names(self.lines[self.i][len("diff --git "):])
        self.i += 1
        created = deleted = binary = copy = False
        mode: str | None = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.startswith(("diff --git ", "@@ ")) or (
                    line.startswith("--- ") and self._peek(1).startswith("+++ ")):
                break
            if not line or not line[0].isalpha():
                break  # the end of the extended header (a mail footer, a blank line)
            created |= line.startswith("new file mode")
            deleted |= line.startswith("deleted file mode")
            if line.startswith(("new file mode ", "new mode ")):
                mode = line.split()[-1]
            binary |= line.startswith(("Binary files ", "GIT binary patch"))
            if line.startswith(("rename from ", "copy from ")):
                old = "a/" + _unquote(line.split(" ", 2)[2])
                copy = line.startswith("copy")
            elif line.startswith(("rename to ", "copy to ")):
                new = "b/" + _unquote(line.split(" ", 2)[2])
            self.i += 1
        hunks: tuple[Hunk, ...] = ()
        if self.i < len(self.lines) and self.lines[self.i].startswith("--- ") and \
                self._peek(1).startswith("+++ "):
            old, new = self._names()
            hunks = self._hunks()
        return FilePatch(None if created else old, None if deleted else new, hunks, binary,
                         copy, self.offset + start + 1, self.subject, mode)

    def _plain_file(self) -> FilePatch:
        start = self.i
        old, new = self._names()
        return FilePatch(old, new, self._hunks(), line=self.offset + start + 1,
                         subject=self.subject)

    def _names(self) -> tuple[str | None, str | None]:
        """The names of a `---`/`+++` pair (timestamps dropped); /dev/null is None."""
        names: list[str | None] = []
        for prefix in ("--- ", "+++ "):
            raw = self.lines[self.i][len(prefix):].split("\t", 1)[0].rstrip("\r")
            raw = _unquote(raw) if raw.startswith('"') else raw.rstrip()
            names.append(None if raw == "/dev/null" else raw)
            self.i += 1
        return names[0], names[1]

    def _hunks(self) -> tuple[Hunk, ...]:
        hunks: list[Hunk] = []
        while self.i < len(self.lines):
            match = _HUNK_RE.match(self.lines[self.i])
            if match is None:
                break
            hunks.append(self._hunk(match))
        if not hunks:
            raise PatchError(f"{self.where(self.i)}: expected a hunk (@@ -a,b +c,d @@) "
                             "after the file names")
        return tuple(hunks)

    def _hunk(self, match: re.Match[str]) -> Hunk:
        header = self.i
        numbers = [self._number(g, header) for g in match.groups()]
        old_start, new_start = numbers[0] or 0, numbers[2] or 0
        old_len = numbers[1] if numbers[1] is not None else 1
        new_len = numbers[3] if numbers[3] is not None else 1
        self.i += 1
        body: list[str] = []
        no_eol = {"old": False, "new": False}
        want_old, want_new = old_len, new_len
        while want_old > 0 or want_new > 0:
            if self.i >= len(self.lines):
                raise PatchError(f"{self.where(header)}: the hunk ends early (the patch "
                                 "is truncated or its line counts are wrong)")
            line = self.lines[self.i]
            tag = line[:1] or " "  # mailers strip the space of an empty context line
            if tag == "\\":
                self._mark_no_eol(body, no_eol)
            elif tag in " -+":
                want_old -= tag != "+"
                want_new -= tag != "-"
                body.append(tag + line[1:])
            else:
                raise PatchError(f"{self.where(self.i)}: malformed hunk line {line[:40]!r}")
            if want_old < 0 or want_new < 0:
                raise PatchError(f"{self.where(header)}: the hunk has more lines than its "
                                 "header says")
            self.i += 1
        if self.i < len(self.lines) and self.lines[self.i].startswith("\\"):
            self._mark_no_eol(body, no_eol)
            self.i += 1
        return Hunk(old_start, old_len, new_start, new_len, tuple(body), no_eol["old"],
                    no_eol["new"], self.offset + header + 1)

    def _number(self, digits: str | None, header: int) -> int | None:
        """A number of a hunk header; no file has ten billion lines (and int() refuses
        numbers of over 4,300 digits)."""
        if digits is None:
            return None
        if len(digits) > MAX_DIGITS:
            raise PatchError(f"{self.where(header)}: the hunk header's line number "
                             f"{digits[:12]}... is too large")
        return int(digits)

    @staticmethod
    def _mark_no_eol(body: list[str], no_eol: dict[str, bool]) -> None:
        """`\\ No newline at end of file` refers to the line before it."""
        last = body[-1][:1] if body else " "
        if last in " -":
            no_eol["old"] = True
        if last in " +":
            no_eol["new"] = True


def _git_names(rest: str) -> tuple[str, str]:
    """`a/x b/x` of a `diff --git` line (quoted when the names hold odd characters)."""
    if rest.startswith('"'):
        end = _quoted_end(rest)
        first, second = _unquote(rest[:end]), rest[end:].strip()
        return first, _unquote(second) if second.startswith('"') else second
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[:half][2:] == rest[half + 1:][2:]:
        return rest[:half], rest[half + 1:]
    first, sep, second = rest.partition(" b/")
    return (first, "b/" + second) if sep else (rest, rest)


def _quoted_end(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return len(text)


def _unquote(text: str) -> str:
    """git's C-style quoting: "a/f\\303\\251.c" -> a/fé.c (octal escapes are UTF-8 bytes)."""
    if not (len(text) >= 2 and text.startswith('"') and text.endswith('"')):
        return text
    out = bytearray()
    body, i = text[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out += _raw(ch)
            i += 1
        elif body[i + 1] in "01234567":
            digits = _OCTAL_RE.match(body, i + 1)
            assert digits is not None
            out.append(int(digits.group(0), 8) & 0xFF)
            i = digits.end()
        else:
            out += _raw(_QUOTE_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
    return out.decode("utf-8", "surrogateescape")


def _raw(ch: str) -> bytes:
    """The bytes of one character of a name: an undecodable byte read with surrogateescape
    is that byte again; any other surrogate stays invalid UTF-8 (the name is refused later)."""
    try:
        return ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return ch.encode("utf-8", "surrogatepass")


# ---- paths ---------------------------------------------------------------------------------


def resolve(patch: Patch, exists: Callable[[str], bool]) -> tuple[Change, ...]:
    """Tree paths of every file patch. The prefix depth (patch -pN) is the one under which
    most of the files the patch modifies exist; git's a/ and b/ make that 1."""
    strip = _best_strip(patch, exists)
    return tuple(Change(_strip(f.old_name, strip, patch.name),
                        _strip(f.new_name, strip, patch.name), f) for f in patch.files)


def _best_strip(patch: Patch, exists: Callable[[str], bool]) -> int:
    names = [f.old_name for f in patch.files if f.old_name is not None]
    if not names:
        created = [f.new_name for f in patch.files if f.new_name is not None]
        return 1 if created and all(n.startswith("b/") for n in created) else 0
    scores: list[tuple[int, int]] = []
    for strip in (1, 0, 2, 3):
        hits = sum(1 for n in names if (p := _stripped(n, strip)) is not None and exists(p))
        scores.append((hits, -[1, 0, 2, 3].index(strip)))
    best_hits, best_rank = max(scores)
    return [1, 0, 2, 3][-best_rank] if best_hits else 1


def _stripped(name: str, strip: int) -> str | None:
    parts = [p for p in name.split("/") if p]
    if len(parts) <= strip:
        return None
    return "/".join(parts[strip:])


def _strip(name: str | None, strip: int, patch_name: str) -> str | None:
    if name is None:
        return None
    path = _stripped(name, strip)
    if path is None:
        raise PatchError(f"{patch_name}: cannot take {strip} leading folders off {name!r}")
    normal = posixpath.normpath(path)
    if normal.startswith(("/", "../")) or normal in ("..", "."):
        raise PatchError(f"{patch_name}: refusing a path outside the tree: {name!r}")
    if "\0" in normal:
        raise PatchError(f"{patch_name}: a file name holds a NUL byte: {name!r}")
    try:
        normal.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept as surrogates: every name is UTF-8
        raise PatchError(f"{patch_name}: a file name is not UTF-8: {name!r}") from None
    return normal


# ---- applying ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Text:
    lines: list[str]
    eol: bool  # the last line ends with a newline

    @classmethod
    def of(cls, data: bytes) -> _Text:
        text = data.decode("utf-8", "surrogateescape")
        if not text:
            return cls([], True)
        parts = text.split("\n")
        if parts[-1] == "":
            return cls(parts[:-1], True)
        return cls(parts, False)

    def encode(self) -> bytes:
        if not self.lines:
            return b""
        text = "\n".join(self.lines) + ("\n" if self.eol else "")
        return text.encode("utf-8", "surrogateescape")


def apply(changes: Sequence[Change],
          read: Callable[[str], bytes | None]) -> dict[str, bytes | None]:
    """The new content of every file the changes touch (None: deleted), applying the file
    patches in order so a later patch of a series sees the earlier ones' result."""
    state: dict[str, bytes | None] = {}

    def current(path: str) -> bytes | None:
        return state[path] if path in state else read(path)

    for change in changes:
        if change.patch.binary:
            if _is_source(change.old) or _is_source(change.new):
                raise PatchError(f"{_label(change)}: binary patch of a C file")
            continue  # firmware blobs and images cannot change an MMIO site
        _apply_change(change, current, state)
    return state


def check_folders(state: Mapping[str, bytes | None], is_file: Callable[[str], bool]) -> None:
    """A path is a file or a folder, never both: a patch adding x.h and x.h/y.c, or y.c
    under a file of the tree (is_file), cannot apply. `state` is apply()'s result."""
    for path in sorted(p for p, data in state.items() if data is not None):
        parent = posixpath.dirname(path)
        while parent:
            if state[parent] is not None if parent in state else is_file(parent):
                raise PatchError(f"{path}: cannot be created, {parent} is a file")
            parent = posixpath.dirname(parent)


def _apply_change(change: Change, current: Callable[[str], bytes | None],
                  state: dict[str, bytes | None]) -> None:
    label = _label(change)
    if change.old is None:
        if change.new is not None and current(change.new):
            raise PatchError(f"{label}: creates {change.new}, which already exists")
        original: bytes | None = b""
    else:
        original = current(change.old)
        if original is None:
            raise PatchError(f"{label}: {change.old} does not exist in the tree")
    text = _Text.of(original or b"")
    _apply_hunks(text, change.patch.hunks, label)
    if change.new is None:
        if text.lines:
            raise PatchError(f"{label}: deletes {change.old}, but it holds more than the "
                             "patch removes")
        state[change.old or ""] = None
        return
    if change.old is not None and change.old != change.new and not change.patch.copy:
        state[change.old] = None  # a rename
    state[change.new] = text.encode()


def _apply_hunks(text: _Text, hunks: Sequence[Hunk], label: str) -> None:
    offset = 0  # how far earlier hunks were found from where they said
    floor = 0  # hunks apply in order and never overlap
    context = max((max(_context_run(h.lines), _context_run(h.lines[::-1])) for h in hunks),
                  default=0)
    for number, hunk in enumerate(hunks, start=1):
        found = _locate(text.lines, hunk, offset, floor, context)
        if found is None:
            applied = _locate(text.lines, _reversed(hunk), offset, floor, context, fuzz=0)
            hint = " (it looks applied already)" if applied is not None else ""
            raise PatchError(f"{label}: hunk #{number} (line {hunk.line} of the patch) "
                             f"does not apply{hint}")
        start, head_cut, tail_cut = found
        old, new = hunk.old(), hunk.new()
        replaced = old[head_cut:len(old) - tail_cut]
        inserted = new[head_cut:len(new) - tail_cut]
        at_end = start + len(replaced) == len(text.lines)
        text.lines[start:start + len(replaced)] = inserted
        offset = start - head_cut - _expected(hunk)
        floor = start + len(inserted)
        if at_end and (hunk.old_no_eol or hunk.new_no_eol or tail_cut == 0):
            text.eol = not hunk.new_no_eol


def _reversed(hunk: Hunk) -> Hunk:
    swap = {"+": "-", "-": "+", " ": " "}
    return Hunk(hunk.new_start, hunk.new_len, hunk.old_start, hunk.old_len,
                tuple(swap[t[0]] + t[1:] for t in hunk.lines), hunk.new_no_eol,
                hunk.old_no_eol, hunk.line)


def _expected(hunk: Hunk) -> int:
    """The 0-based line the hunk's old side starts at, as its header says."""
    return hunk.old_start if hunk.old_len == 0 else hunk.old_start - 1


def _locate(lines: list[str], hunk: Hunk, offset: int, floor: int, context: int,
            fuzz: int = MAX_FUZZ) -> tuple[int, int, int] | None:
    """(start, context lines dropped at the head, at the tail) of the best match.

    As in GNU patch: a hunk with less context on one side than the patch's usual amount
    sits at that end of the file (diff shortens context only there), so it must match
    there; and fuzz drops only the context beyond that shortfall. Without this, fuzz would
    let a hunk whose tail context is short apply again to a file that already has it."""
    old = hunk.old()
    lead = _context_run(hunk.lines)
    trail = _context_run(hunk.lines[::-1])
    tried: set[tuple[int, int]] = set()
    for level in range(fuzz + 1):
        head_cut = min(max(0, level + lead - context), lead)
        tail_cut = min(max(0, level + trail - context), trail)
        want = old[head_cut:len(old) - tail_cut]
        if (head_cut, tail_cut) in tried or (level and not want):
            continue
        tried.add((head_cut, tail_cut))
        anchor_start = head_cut if lead < context else None
        anchor_end = len(lines) - tail_cut - len(want) if trail < context else None
        if anchor_start is not None and anchor_end is not None and anchor_start != anchor_end:
            continue
        anchor = anchor_start if anchor_start is not None else anchor_end
        if anchor is not None:
            if anchor >= floor and lines[anchor:anchor + len(want)] == want:
                return anchor, head_cut, tail_cut
            continue
        start = _search(lines, want, _expected(hunk) + offset + head_cut, floor)
        if start is not None:
            return start, head_cut, tail_cut
    return None


def _context_run(lines: Sequence[str]) -> int:
    n = 0
    for line in lines:
        if line[0] != " ":
            break
        n += 1
    return n


def _search(lines: list[str], want: list[str], guess: int, floor: int) -> int | None:
    """The match of want nearest to guess, at or after floor."""
    last = len(lines) - len(want)
    if last < floor:
        return None
    if not want:
        return min(max(guess, floor), len(lines))
    guess = min(max(guess, floor), last)
    for distance in range(max(guess - floor, last - guess) + 1):
        for start in (guess - distance, guess + distance):
            if floor <= start <= last and lines[start:start + len(want)] == want:
                return start
    return None


def _is_source(path: str | None) -> bool:
    return path is not None and path.endswith((".c", ".h"))


def _label(change: Change) -> str:
    name = change.new or change.old or "?"
    subject = f" ({change.patch.subject})" if change.patch.subject else ""
    return f"{name}{subject}"


SYMLINK_MODE = "120000"


def symlinks(changes: Sequence[Change], state: dict[str, bytes | None],
             was_link: Callable[[str], bool]) -> dict[str, str]:
    """The paths `apply` left as symlinks, with their text (a symlink's content in a patch
    is its target): created or turned into one (mode 120000), or patched while staying one.
    A later change of the same path in a series decides."""
    kinds: dict[str, bool] = {}
    for change in changes:
        if change.new is None:
            continue
        if change.patch.mode is not None:
            kinds[change.new] = change.patch.mode == SYMLINK_MODE
        elif change.new not in kinds:
            source = change.old if change.old is not None else change.new
            kinds[change.new] = kinds.get(source, was_link(source))
    return {path: data.decode("utf-8", "surrogateescape") for path, link in kinds.items()
            if link and (data := state.get(path)) is not None}


def touched(changes: Sequence[Change]) -> tuple[str, ...]:
    """Every tree path the changes read or write, sorted."""
    return tuple(sorted({p for c in changes for p in (c.old, c.new) if p is not None}))
