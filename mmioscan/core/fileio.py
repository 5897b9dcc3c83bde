"""Reading input files and writing output files, the careful way.

- `read_input(path)`: the bytes of a file given on the command line (--rules, --config,
  --patch-points, --patch, --baseline, --triage, --policy). Only a regular file is read: a
  FIFO would block forever waiting for a writer, a device such as /dev/zero would never end.
  The file is opened non-blocking and checked with fstat on the open descriptor, so nothing
  can swap it between the check and the read. Refusals are OSError (`strerror` says why), so
  each reader reports them like any other unreadable file.
- `write_atomic(path, data)`: the file holds either its old bytes or all the new ones, never
  a truncated mix: the data goes to a temporary file in the same folder, is flushed to disk
  and renamed over the target (os.replace). The temporary file is removed on every way out.
  A target that exists and is not a regular file (/dev/stdout, a FIFO, /dev/null) is written
  in place: it cannot be replaced, and holds no old content to protect. A symlink is followed:
  its target is replaced, the link stays.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
_CHUNK = 1 << 20

# Why a source file was not read: the same words from `mmioscan scan` and from the gate.
LEAVES_TREE = "symlink leaves the tree: not read"
BROKEN_LINK = "broken symlink: not read"
NOT_REGULAR = "cannot read: not a regular file"


class NotRegularFile(OSError):
    """An input that is not a regular file (a FIFO, a device, a folder)."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "no regular file")


def nonblocking(path: str, flags: int) -> int:
    """An `opener` for open(): opening a FIFO does not wait for a writer."""
    return os.open(path, flags | os.O_NONBLOCK)


def read_input(path: Path) -> bytes:
    """The bytes of a regular file; NotRegularFile (an OSError) for anything else."""
    with open(path, "rb", opener=nonblocking) as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file: {_kind(mode)}",
                                 str(path))
        return fh.read()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[:_CHUNK])
        view = view[written:]


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes) -> None:
    """Write data to path atomically (see the module comment); OSError when impossible."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with open(path, "wb") as fh:  # a device or a FIFO (/dev/stdout): nothing to replace
            fh.write(data)
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                dir=target.parent if str(target.parent) else ".")
    try:
        try:
            os.fchmod(fd, stat.S_IMODE(mode) if mode is not None and stat.S_ISREG(mode)
                      else _new_file_mode())
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
        temp = ""
    finally:
        if temp:
            with contextlib.suppress(OSError):
                os.unlink(temp)
