"""The gate policy (rules/policy.toml, mmioscan/gate/policy.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mmioscan.core.findings import finding_class
from mmioscan.gate.policy import PolicyError, decide, load_policy, uses_funnel
from tests.unit.gate_sites import make_site


def _action(**kw: object) -> tuple[str, str | None]:
    site = make_site(**kw)  # type: ignore[arg-type]
    class_id = finding_class(site)
    assert class_id is not None
    decision = decide(site, class_id, load_policy())
    return decision.action, decision.rule


def test_default_blocks_unsupported_and_raw_derefs_anywhere() -> None:
    assert _action(callee="__iowrite32_copy", tdx="unsupported") == (
        "block", "new-unsupported-mmio")
    assert _action(callee="regs", kind="deref", tdx=None) == ("block", "new-raw-iomem-deref")


def test_default_blocks_virtio_sites_outside_the_funnel() -> None:
    assert _action(path="drivers/net/virtio_net.c", group="virtio", callee="readl") == (
        "block", "virtio-funnel-bypass")
    # through the funnel: the callee, the via chain, the function, or the transport itself
    assert _action(path="drivers/net/virtio_net.c", group="virtio", callee="vp_ioread16",
                   kind="wrapper")[0] == "info"
    assert _action(path="drivers/x/virtio_x.c", group="virtio", callee="helper",
                   kind="wrapper", via=("helper", "vp_modern_get_status", "ioread8"))[0] == \
        "info"
    assert _action(path="drivers/x/virtio_x.c", group="virtio", function="vp_iowrite64_x",
                   callee="iowrite32")[0] == "info"
    assert _action(path="drivers/virtio/virtio_mmio.c", group="virtio", function="vm_get",
                   callee="readl")[0] == "info"


def test_hot_ve_warns_only_when_reachable_under_a_config() -> None:
    assert _action(hot=True, reachable=True) == ("warn", "hot-ve-reachable")
    assert _action(hot=True, reachable=None)[0] == "info"  # no --config given
    assert _action(hot=True, reachable=False)[0] == "info"
    assert _action(hot=False, reachable=True)[0] == "info"


def test_a_rule_can_name_the_kinds_of_hot_path(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = 1\n[[rule]]\nid = 'xmit'\naction = 'block'\n"
                      "hot_kinds = ['xmit', 'io']\n", encoding="utf-8")
    loaded = load_policy(policy)
    site = make_site(hot=True)
    kinds = [("irq", "xmit"), ("io",), ("irq",), ()]
    decided = [decide(replace(site, hot_kinds=k), "hot-ve-mmio", loaded).action for k in kinds]
    assert decided == ["block", "block", "info", "info"]
    # a reset-only site names the kinds that reach it, but is no hot site
    reset = replace(site, hot=False, hot_kinds=("xmit",), hot_only_via="reset")
    assert decide(reset, "ve-mmio", loaded).action == "info"


def test_a_hot_virtio_bypass_blocks_before_it_warns() -> None:
    assert _action(group="virtio", hot=True, reachable=True)[0] == "block"


def test_funnel_names_come_from_the_policy() -> None:
    policy = load_policy()
    assert "vp_ioread*" in policy.funnels
    assert uses_funnel(make_site(callee="vp_iowrite32"), policy)
    assert not uses_funnel(make_site(callee="writel"), policy)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_a_custom_policy_with_paths(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, 'version = 1\n[[rule]]\nid = "x"\naction = "warn"\n'
                                'paths = ["drivers/foo/*"]\n'))
    site = make_site()
    assert decide(site, "ve-mmio", policy).action == "warn"
    other = make_site(path="drivers/bar/bar.c")
    assert decide(other, "ve-mmio", policy).action == "info"


@pytest.mark.parametrize(("text", "message"), [
    ("version = 2\n", "version = 1"),
    ("version = 1\n[[rule]]\nid = 'a'\naction = 'stop'\n", "block or warn"),
    ("version = 1\n[[rule]]\nid = 'a'\naction = 'block'\nclasses = ['bogus']\n",
     "unknown finding class"),
    ("version = 1\n[[rule]]\nid = 'a'\naction = 'block'\ncolour = 1\n", "unknown key"),
    ("version = 1\n[[rule]]\nid = 'a'\naction = 'block'\nhot = 'yes'\n", "true or false"),
    ("version = 1\n[[rule]]\nid = 'a'\naction = 'block'\n[[rule]]\nid = 'a'\n"
     "action = 'warn'\n", "unique"),
    ("version = [\n", "not valid TOML"),
])
def test_malformed_policies(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(_write(tmp_path, text))


@pytest.mark.parametrize(("text", "message"), [
    ("version = " + "1" * 5000 + "\n", "more than 4,300 digits"),
    ("version = 1\nx = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    ("version = 1\nx = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n", "nested too deeply"),
    ("version = 1\n[[rule]]\nid = 'a'\naction = 'block'\ngroup = ['x86']\n", "`group`"),
], ids=["huge-number", "deep-arrays", "deep-tables", "group-not-a-string"])
def test_policies_the_parser_or_the_checks_refuse(tmp_path: Path, text: str,
                                                  message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(_write(tmp_path, text))


def test_missing_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "none.toml")


def test_a_rule_id_must_be_printable(tmp_path: Path) -> None:
    # its id is in every message about the rule: a line break would make them two lines
    with pytest.raises(PolicyError, match="printable") as info:
        load_policy(_write(tmp_path, 'version = 1\n[[rule]]\nid = "a\\nb"\naction = "stop"\n'))
    assert "\n" not in str(info.value)
