"""Straight-line constructors for frozen, slotted dataclasses, generated once per class.

`dataclasses.replace` re-runs `__init__` (keywords, a Python `object.__setattr__` per field)
and unpickling runs a Python `__setstate__`; the records the whole tree holds by the million
(Site copies, FileFacts loaded from the cache) are built here instead: one generated function
that sets every slot through its descriptor, as dataclasses generates `__init__`, twice as
fast as a loop over the field names. No `__post_init__` runs: the classes built so have none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any


def slot_filler(cls: type, signature: str, value_of: Callable[[int, str], str],
                names: Mapping[str, object] | None = None) -> Callable[..., Any]:
    """`def fill(<signature>)` returning a new `cls` whose i-th field `name` is set to the
    expression `value_of(i, name)` (Python source over the signature's parameters and
    `names`, the extra names the expressions use)."""
    fields = [f.name for f in dataclasses.fields(cls)]
    lines = [f"def fill({signature}):", "    new = _new(_cls)"]
    lines += [f"    _set_{name}(new, {value_of(i, name)})" for i, name in enumerate(fields)]
    lines.append("    return new")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **(names or {})}
    namespace.update((f"_set_{name}", cls.__dict__[name].__set__) for name in fields)
    exec("\n".join(lines), namespace)  # noqa: S102 - the code above, from field names only
    fill: Callable[..., Any] = namespace["fill"]
    return fill
