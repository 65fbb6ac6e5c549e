# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Resource limits in the units each consumer wants.

PRIVATE to the collection: may change at any time. Used by the host_limits role.

The inputs are the seeds' `docker run --ulimit` values and use Docker's units: memlock and stack
in bytes (or "unlimited"), nofile as a count. limits.conf counts memlock and stack in KiB,
systemd's Limit*= takes bytes or "infinity", and `ulimit -l` / `ulimit -s` print KiB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

UNLIMITED = ("unlimited", "infinity", -1)
# limits.conf item -> (systemd directive, `ulimit` flag, counted in KiB by limits.conf/ulimit)
ITEMS = {
    "memlock": ("LimitMEMLOCK", "l", True),
    "stack": ("LimitSTACK", "s", True),
    "nofile": ("LimitNOFILE", "n", False),
}


def _value(item: str, value: Any) -> int | None:
    """The limit as an int (bytes or count), None for unlimited; rejects what the consumers cannot express."""
    if isinstance(value, str) and value.strip().lower() in UNLIMITED:
        return None
    if value == -1:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{item}: {value!r} is neither a number nor 'unlimited'")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{item}: {value!r} is neither a number nor 'unlimited'") from None
    if number <= 0:
        raise ValueError(f"{item}: {number} must be positive")
    if ITEMS[item][2] and number % 1024:
        raise ValueError(f"{item}: {number} bytes is not a whole number of KiB, the unit of limits.conf and ulimit")
    return number


def limits(values: Mapping[str, Any], domains: Sequence[str] = ("*", "root")) -> dict[str, Any]:
    """{"limits_conf": [lines], "systemd": {directive: value}, "ulimit": {flag: expected output}}.

    `*` in limits.conf does not cover root, hence the explicit root lines by default.
    """
    unknown = sorted(set(values) - set(ITEMS))
    if unknown:
        raise ValueError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(ITEMS)}")
    lines: list[str] = []
    systemd: dict[str, str] = {}
    ulimit: dict[str, str] = {}
    for item in ITEMS:
        if item not in values:
            continue
        directive, flag, kib = ITEMS[item]
        number = _value(item, values[item])
        conf = "unlimited" if number is None else str(number // 1024 if kib else number)
        lines += [f"{domain:<8} {kind:<4} {item:<7} {conf}" for domain in domains for kind in ("soft", "hard")]
        systemd[directive] = "infinity" if number is None else str(number)
        ulimit[flag] = conf
    return {"limits_conf": lines, "systemd": systemd, "ulimit": ulimit}


def thp_mode(text: str | None) -> str | None:
    """The selected mode of /sys/kernel/mm/transparent_hugepage/enabled: "always [madvise] never" -> "madvise"."""
    for word in (text or "").split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def sysctls_to_set(wanted: Mapping[str, Any], running: Sequence[str]) -> list[str]:
    """`name=value` for each wanted sysctl whose running value (`sysctl -n` of the names, in order)
    differs; whitespace inside a value (tabs between fields) counts as one space."""
    if len(running) != len(wanted):
        raise ValueError(f"sysctl -n printed {len(running)} values for {len(wanted)} names")
    return [f"{name}={value}" for (name, value), seen in zip(wanted.items(), running, strict=True) if " ".join(str(value).split()) != " ".join(seen.split())]
