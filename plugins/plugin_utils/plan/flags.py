# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Resolved flags of one worker: recipe order, user overrides, placeholders, typed reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .recipes import substitute

# SGLang accepts both spellings; the plan reads whichever the recipe or user wrote.
ALIASES: dict[str, tuple[str, ...]] = {
    "tp-size": ("tp-size", "tensor-parallel-size"),
    "dp-size": ("dp-size", "data-parallel-size"),
    "ep-size": ("ep-size", "expert-parallel-size"),
    "pp-size": ("pp-size", "pipeline-parallel-size"),
    # The decode CUDA-graph batch limit; SGLang 0.5.14 split the flag by role.
    "cuda-graph-max-bs": ("cuda-graph-max-bs", "cuda-graph-max-bs-decode"),
}


def merge_flags(recipe_flags: dict[str, Any], user_args: dict[str, Any]) -> list[tuple[str, Any]]:
    """Recipe order; a user value replaces the recipe's in place, new flags follow in user order;
    null or false removes a flag."""
    merged = dict(recipe_flags)
    merged.update(user_args)
    return [(k, v) for k, v in merged.items() if v is not None and v is not False]


def fill(flags: list[tuple[str, Any]], context: dict[str, str]) -> list[tuple[str, Any]]:
    def one(value: Any) -> Any:
        return substitute(value, context) if isinstance(value, str) else value

    return [(k, [one(v) for v in value] if isinstance(value, list) else one(value)) for k, value in flags]


def to_argv(flags: list[tuple[str, Any]]) -> list[str]:
    argv: list[str] = []
    for name, value in flags:
        argv.append(f"--{name}")
        if value is True:
            continue
        argv.extend(str(v) for v in value) if isinstance(value, list) else argv.append(str(value))
    return argv


@dataclass
class FlagView:
    """Typed, read-only access to one worker's resolved flags, for the validation rules."""

    flags: dict[str, Any]

    def name_of(self, canonical: str) -> str | None:
        for name in ALIASES.get(canonical, (canonical,)):
            if name in self.flags:
                return name
        return None

    def present(self, canonical: str) -> bool:
        return self.name_of(canonical) is not None

    def raw(self, canonical: str) -> Any:
        name = self.name_of(canonical)
        return None if name is None else self.flags[name]

    def text(self, canonical: str) -> str | None:
        value = self.raw(canonical)
        return None if value is None or value is True else str(value)

    def integer(self, canonical: str) -> int | None:
        """The flag's integer value; None when absent. Raises ValueError when not an integer."""
        value = self.raw(canonical)
        if value is None:
            return None
        if isinstance(value, (bool, list)):
            raise ValueError(value)
        return int(str(value))

    def number(self, canonical: str) -> float | None:
        value = self.raw(canonical)
        if value is None:
            return None
        if isinstance(value, (bool, list)):
            raise ValueError(value)
        return float(str(value))
