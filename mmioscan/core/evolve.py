"""Fast copies of sites with some fields changed.

`dataclasses.replace` re-runs `__init__` with every field as a keyword (a Site has 33): it was
a quarter of the sites stage and of the drivers-and-verdicts stage on the whole tree, where
every one of 250,000 sites is copied twice. A frozen, slotted dataclass without
`__post_init__` is copied here field by field instead, with the same result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mmioscan.core.model import DriverInfo, Site, Tdx
from mmioscan.core.slots import slot_filler

_FIELDS = tuple(f.name for f in dataclasses.fields(Site))
_KNOWN = frozenset(_FIELDS)


# copy(site, changes.get): every field from the changes, else from the site (core/slots.py)
_copy: Callable[[Site, Callable[[str, Any], Any]], Site] = slot_filler(
    Site, "site, get", lambda _i, name: f"get({name!r}, site.{name})")


def evolved(site: Site, **changes: Any) -> Site:
    """dataclasses.replace(site, **changes), without re-running __init__."""
    if not changes.keys() <= _KNOWN:
        raise TypeError(f"Site has no field {sorted(changes.keys() - _KNOWN)[0]!r}")
    return _copy(site, changes.get)


def placed(site: Site, driver: str, scope_key: str | None, hot: bool,
           hot_kinds: tuple[str, ...] = (), hot_only_via: str | None = None) -> Site:
    """A copy of the site with its driver, graph node and hot flag (and how it is hot)."""
    return evolved(site, driver=driver, scope_key=scope_key, hot=hot, hot_kinds=hot_kinds,
                   hot_only_via=hot_only_via)


def enriched(site: Site, driver: DriverInfo, tdx: Tdx | None, fingerprint: str | None,
             code: str | None, platforms: tuple[tuple[str, Tdx], ...] = ()) -> Site:
    """A copy of the site with the driver mapping, the verdicts and the fingerprint."""
    return evolved(site, driver=driver.name, config_symbol=driver.config_symbol,
                   group=driver.group, group_reason=driver.group_reason,
                   reachable=driver.reachable, tdx=tdx, fingerprint=fingerprint, code=code,
                   platforms=platforms)
