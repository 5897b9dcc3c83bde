"""prefilter.NameScanner: does a file mention a catalogued name as a whole identifier?"""

from __future__ import annotations

import random
import re

import pytest

from mmioscan.cfront.prefilter import NameScanner
from mmioscan.core.catalogue import load_catalogue

NAMES = sorted(load_catalogue().names())


@pytest.fixture(scope="module")
def scanner() -> NameScanner:
    return NameScanner(NAMES)


def _reference(data: bytes, names: list[str]) -> bool:
    words = set(re.findall(rb"[A-Za-z0-9_]+", data))
    return any(n.encode() in words for n in names)


@pytest.mark.parametrize("text", [
    b"readl(x)", b"x = readl(base);", b"\twritel(v, p)", b"ioread32(p)", b"inb(0x80)",
    b"outb_p(v, p)", b"memcpy_toio(d, s, n)", b"__raw_writel(v, p)", b"enqcmds(p, c)",
    b"readl_poll_timeout(a, v, c, 1, 2)", b"lo_hi_readq(p)", b"fn = writel;", b"readl",
    b"/* readl */", b"\"readl\"", b"x+readl", b"(readl)", b"a,inb,b",
])
def test_mentions(scanner: NameScanner, text: bytes) -> None:
    assert scanner.mentions(text)


@pytest.mark.parametrize("text", [
    b"", b"thread ready already", b"my_readl(x)", b"readl_val = 1", b"readlx", b"xreadl",
    b"inbound", b"outbox", b"_inb", b"memcpy_toio2", b"pthread_writelock", b"reader writer",
    b"READL(x)", b"ioread", b"iowrite",
])
def test_does_not_mention(scanner: NameScanner, text: bytes) -> None:
    assert not scanner.mentions(text)


def test_every_catalogued_name_is_found_alone_and_in_context(scanner: NameScanner) -> None:
    for name in NAMES:
        n = name.encode()
        assert scanner.mentions(n), name
        assert scanner.mentions(b"\tv = " + n + b"(p);\n"), name
        assert scanner.mentions(b"thread already " + n), name  # after rejected anchor hits


def test_names_glued_to_more_word_bytes_are_not_found(scanner: NameScanner) -> None:
    for name in NAMES:
        n = name.encode()
        for glued in (b"x" + n, n + b"x", b"9" + n, n + b"_9"):
            assert scanner.mentions(glued) == _reference(glued, NAMES), glued


def test_match_at_start_and_end_of_data(scanner: NameScanner) -> None:
    assert scanner.mentions(b"inb")
    assert scanner.mentions(b"inb ")
    assert scanner.mentions(b" inb")
    assert not scanner.mentions(b"inbx")


def test_small_name_set() -> None:
    s = NameScanner(["readl", "foo_bar"])
    assert s.mentions(b"x foo_bar(1)")
    assert not s.mentions(b"ioread32(p)")  # not in this set
    assert not s.mentions(b"foo_barx foo_ba")


def test_empty_name_set_mentions_nothing() -> None:
    assert not NameScanner([]).mentions(b"readl(x)")


def test_agrees_with_a_regex_on_random_text(scanner: NameScanner) -> None:
    rng = random.Random(1234)
    pieces = [n.encode() for n in rng.sample(NAMES, 25)] + [
        b"read", b"write", b"thread", b"_", b"x", b"l", b"in", b"b", b"out", b"io", b"32",
        b" ", b"\n", b"(", b")", b"->", b".", b"/*", b"*/", b"\"", b"0x1f", b"ready", b"__",
    ]
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert scanner.mentions(data) == _reference(data, NAMES), data


def test_occurrences_report_every_whole_name(scanner: NameScanner) -> None:
    occurrences = getattr(scanner, "occurrences", None)
    if occurrences is None:
        pytest.skip("NameScanner.occurrences is not part of this version")
    data = b"a = readl(p) + my_readl(q); inb(1); thread; x.readl; readlx"
    found = sorted(occurrences(data))
    assert [(data[s:e], n) for s, e, n in found] == [
        (b"readl", "readl"), (b"inb", "inb"), (b"readl", "readl")]
    assert [s for s, _, _ in found] == [data.index(b"readl"), data.index(b"inb"),
                                        data.index(b"x.readl") + 2]
