"""The gate policy (rules/policy.toml): which new findings block, which only warn.

Data in, frozen rules out; `decide` is the only logic. Rules are tried in order, the first
match decides, and no match means "info" (reported, never blocking). Keeping the order
explicit lets a policy say "block virtio bypasses" before "warn on hot #VE sites" without
priorities or scores.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmioscan.core import datafile
from mmioscan.core.findings import FINDING_CLASSES
from mmioscan.core.model import Site
from mmioscan.core.rules_path import rules_dir

Action = Literal["block", "warn", "info"]
_ACTIONS = ("block", "warn")
_GROUPS = frozenset({"virtio", "x86", "generic"})
_CLASS_IDS = frozenset(c.id for c in FINDING_CLASSES)
_RULE_KEYS = frozenset({"id", "action", "classes", "group", "funnel", "reachable", "hot",
                        "hot_kinds", "paths", "message"})


class PolicyError(Exception):
    """The policy file is missing or malformed; the message names the file and the rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    action: Action
    classes: frozenset[str]  # empty: any class
    group: str | None = None
    funnel: bool | None = None
    reachable: bool | None = None
    hot: bool | None = None
    paths: tuple[str, ...] = ()
    message: str = ""
    # hot with one of these kinds (irq, xmit, io, ...: rules/hotpaths.toml); empty: any
    hot_kinds: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    funnels: tuple[str, ...]  # name globs of the virtio transports' funnel functions
    transport_files: tuple[str, ...]  # path globs of the transports themselves
    source: str  # the file it came from, for messages


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: str | None  # the rule id that decided, None for "info"
    message: str = ""


INFO = Decision("info", None)


def default_policy_path() -> Path:
    return rules_dir() / "policy.toml"


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (the shipped one by default)."""
    path = path or default_policy_path()
    data, _ = datafile.read_toml(path, PolicyError)
    if data.get("version") != 1:
        raise PolicyError(f"{path}: `version = 1` expected")
    rules = data.get("rule", [])
    if not isinstance(rules, list):
        raise PolicyError(f"{path}: `rule` must be an array of tables ([[rule]])")
    parsed = tuple(_rule(entry, f"{path}: rule #{i}") for i, entry in enumerate(rules, 1))
    ids = [r.id for r in parsed]
    if len(set(ids)) != len(ids):
        raise PolicyError(f"{path}: rule ids must be unique")
    virtio = data.get("virtio", {})
    if not isinstance(virtio, dict):
        raise PolicyError(f"{path}: [virtio] must be a table")
    return Policy(parsed, _strings(virtio, "funnels", f"{path}: [virtio]"),
                  _strings(virtio, "transport_files", f"{path}: [virtio]"), str(path))


def _rule(entry: object, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise PolicyError(f"{where}: expected a table")
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r}")
    rule_id, action = entry.get("id"), entry.get("action")
    if not isinstance(rule_id, str) or not rule_id or not rule_id.isprintable():
        raise PolicyError(f"{where}: `id` must be a non-empty string of printable characters")
    if action not in _ACTIONS:
        raise PolicyError(f"{where} ({rule_id}): `action` must be block or warn")
    classes = frozenset(_strings(entry, "classes", f"{where} ({rule_id})"))
    bad = sorted(classes - _CLASS_IDS)
    if bad:
        raise PolicyError(f"{where} ({rule_id}): unknown finding class {bad[0]!r} "
                          f"(known: {', '.join(sorted(_CLASS_IDS))})")
    group = entry.get("group")
    if group is not None and (not isinstance(group, str) or group not in _GROUPS):
        raise PolicyError(f"{where} ({rule_id}): `group` must be virtio, x86 or generic")
    message = entry.get("message", "")
    if not isinstance(message, str):
        raise PolicyError(f"{where} ({rule_id}): `message` must be a string")
    return Rule(rule_id, action, classes, group,
                _flag(entry, "funnel", where), _flag(entry, "reachable", where),
                _flag(entry, "hot", where),
                _strings(entry, "paths", f"{where} ({rule_id})"), message,
                frozenset(_strings(entry, "hot_kinds", f"{where} ({rule_id})")))


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def _flag(table: dict[str, Any], key: str, where: str) -> bool | None:
    value = table.get(key)
    if value is not None and not isinstance(value, bool):
        raise PolicyError(f"{where}: `{key}` must be true or false")
    return value


def uses_funnel(site: Site, policy: Policy) -> bool:
    """Does the site go through a virtio transport's funnel: it lies in the transport, its
    function is a funnel, or it calls one (directly or on its via chain)?"""
    if any(fnmatch.fnmatchcase(site.path, g) for g in policy.transport_files):
        return True
    names = [site.callee, *site.via]
    if site.function:
        names.append(site.function)
    return any(fnmatch.fnmatchcase(n, g) for n in names for g in policy.funnels)


def _matches(rule: Rule, site: Site, class_id: str, policy: Policy) -> bool:
    if rule.classes and class_id not in rule.classes:
        return False
    if rule.group is not None and site.group != rule.group:
        return False
    if rule.reachable is not None and site.reachable is not rule.reachable:
        return False  # without --config reachable is None: neither true nor false
    if rule.hot is not None and site.hot != rule.hot:
        return False
    if rule.hot_kinds and not (site.hot and rule.hot_kinds.intersection(site.hot_kinds)):
        return False
    if rule.paths and not any(fnmatch.fnmatchcase(site.path, g) for g in rule.paths):
        return False
    return rule.funnel is None or uses_funnel(site, policy) == rule.funnel


def decide(site: Site, class_id: str, policy: Policy) -> Decision:
    """What a new finding means for the gate: the first matching rule's action, else info."""
    for rule in policy.rules:
        if _matches(rule, site, class_id, policy):
            return Decision(rule.action, rule.id, rule.message)
    return INFO
