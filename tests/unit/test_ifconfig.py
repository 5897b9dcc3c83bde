"""#if conditions on CONFIG_ symbols under a .config (mmioscan/kernel/ifconfig.py)."""

from __future__ import annotations

import pytest

from mmioscan.kernel.ifconfig import ConfigConditions

CONFIG = {"CONFIG_Y": "y", "CONFIG_M": "m", "CONFIG_N": "n", "CONFIG_NR": "64",
          "CONFIG_S": '"abc"'}


@pytest.fixture()
def cond() -> ConfigConditions:
    return ConfigConditions(CONFIG)


@pytest.mark.parametrize(("word", "text", "value"), [
    ("ifdef", "CONFIG_Y", True),
    ("ifdef", "CONFIG_M", False),  # =m defines CONFIG_M_MODULE, not CONFIG_M
    ("ifdef", "CONFIG_M_MODULE", True),
    ("ifdef", "CONFIG_ABSENT", False),
    ("ifdef", "CONFIG_NR", True),
    ("ifndef", "CONFIG_Y", False),
    ("ifndef", "CONFIG_ABSENT", True),
    ("ifdef", "__KERNEL__", None),
    ("ifndef", "SOME_LOCAL_MACRO", None),
    ("if", "IS_ENABLED(CONFIG_M)", True),
    ("if", "IS_ENABLED(CONFIG_N)", False),
    ("if", "IS_BUILTIN(CONFIG_M)", False),
    ("if", "IS_MODULE(CONFIG_M)", True),
    ("if", "IS_REACHABLE(CONFIG_Y)", True),
    ("if", "defined(CONFIG_Y) && !defined(CONFIG_ABSENT)", True),
    ("if", "defined CONFIG_N || defined(CONFIG_ABSENT)", False),
    ("if", "defined(CONFIG_Y) || defined(LOCAL)", True),  # decided whatever LOCAL is
    ("if", "defined(CONFIG_N) && defined(LOCAL)", False),
    ("if", "defined(CONFIG_Y) && defined(LOCAL)", None),
    ("if", "!(IS_ENABLED(CONFIG_Y) && IS_ENABLED(CONFIG_N))", True),
    ("if", "CONFIG_Y", True),
    ("if", "CONFIG_M", False),
    ("if", "CONFIG_NR > 32", None),  # values and comparisons are not evaluated
    ("if", "0", False),
    ("if", "1 /* always */", True),
    ("if", "defined(CONFIG_Y) && \\", None),  # continued on the next line: unknown
    ("if", "(IS_ENABLED(CONFIG_Y)", None),
    ("elif", "IS_ENABLED(CONFIG_N)", False),
    ("else", "", None),
])
def test_conditions(cond: ConfigConditions, word: str, text: str, value: bool | None) -> None:
    assert cond(word.encode(), text.encode()) is value


def test_dead_lines_follow_nesting_and_else(cond: ConfigConditions) -> None:
    text = "\n".join([
        "int a;",                       # 1
        "#ifdef CONFIG_N",              # 2
        "void off(void) { writel(1, p); }",  # 3
        "#else",                        # 4
        "void on(void) { writel(2, p); }",   # 5
        "#endif",                       # 6
        "#if IS_ENABLED(CONFIG_Y)",     # 7
        "#ifdef LOCAL",                 # 8
        "void maybe(void) { readl(p); }",    # 9
        "#endif",                       # 10
        "#elif defined(CONFIG_M_MODULE)",  # 11
        "void never(void) { readl(p); }",  # 12
        "#endif",                       # 13
    ]) + "\n"
    dead = cond.dead_lines(text)
    lines = {n for first, last in dead for n in range(first, last + 1)}
    assert 3 in lines and 12 in lines
    assert not {1, 5, 9} & lines
