# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The engine contract: every rendered flag and env var checked against the engine that runs it.

A recipe pins a Dynamo and an SGLang version. engines/catalogue/ holds, for each, what the
released package's own parser accepts (every option: bare or valued, type, choices,
deprecation) and the environment variables its source reads; scripts/engines.py generates
those files from the wheels on PyPI, and tests/contract parses every recipe with the real
parsers. Here, on the controller, a worker's flags are checked against that data the way
argparse will read them: exact names first, then argparse's prefix matching (which turns a
vanished flag into an ambiguous abbreviation or, worse, silently into another flag).
engines/renames.yml names the new spelling of flags and values that releases removed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..plan.problems import Problems

ENGINES_DIR = Path(__file__).resolve().parents[3] / "engines"
# The engines' own namespaces: a name there that the version never reads is a mistake; other
# variables (NCCL_*, MC_*, PYTHON*, ...) belong to libraries whose source is not catalogued.
ENGINE_ENV_PREFIXES = ("SGLANG_", "SGL_", "DYN_")


_VERSION_RE = re.compile(r"^(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?(?:\.post(\d+))?$")


def version_key(text: str) -> tuple[tuple[int, ...], int, int]:
    """Order release versions as PEP 440 does for the forms engines use: 0.5.3 < 0.5.3.post2 <
    0.5.9 < 0.5.21, and 0.5.0rc2 < 0.5.0 (no `packaging` on the controller's import path)."""
    match = _VERSION_RE.match(text)
    if not match:
        return ((0,), 0, 0)
    release = tuple(int(part) for part in match.group(1).split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    pre = -1 if match.group(2) else 0
    return (release, pre, int(match.group(4) or 0))


@dataclass(frozen=True)
class Option:
    """One --flag as the engine's argparse declares it."""

    flag: str
    owner: str  # "SGLang 0.5.21" or "Dynamo 1.6.1"
    nargs: int | str | None  # argparse's nargs; 0 = bare flag, None = exactly one value
    kind: str | None  # int, float, str, other, None (argparse's default: str)
    choices: tuple[str, ...] | None
    deprecated: Mapping[str, Any] | None

    @property
    def bare(self) -> bool:
        return self.nargs == 0


@dataclass(frozen=True)
class Contract:
    """What one (Dynamo, SGLang) pair accepts."""

    dynamo: str
    sglang: str
    options: Mapping[str, Option]
    env_read: frozenset[str]
    env_declared_unread: frozenset[str]
    env_prefixes: tuple[str, ...]
    sgl_prefix_rewritten: bool
    env_deprecated: Mapping[str, str | None]

    @property
    def label(self) -> str:
        return f"SGLang {self.sglang} / Dynamo {self.dynamo}"

    def reads(self, name: str) -> bool:
        if name in self.env_read or name in self.env_deprecated or name.startswith(self.env_prefixes):
            return True
        # SGLang copies every SGL_X to SGLANG_X at import (environ.py).
        return self.sgl_prefix_rewritten and name.startswith("SGL_") and "SGLANG_" + name[4:] in self.env_read


def catalogue_file(engine: str, version: str) -> Path:
    return ENGINES_DIR / "catalogue" / f"{engine}-{version}.json"


@cache
def _load_json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def catalogued_versions(engine: str) -> list[str]:
    return sorted((p.stem.split("-", 1)[1] for p in (ENGINES_DIR / "catalogue").glob(f"{engine}-*.json")), key=version_key)


def _options(data: Mapping[str, Any], owner: str) -> dict[str, Option]:
    return {
        flag: Option(
            flag=flag,
            owner=owner,
            nargs=spec["nargs"],
            kind=spec["type"],
            choices=None if spec["choices"] is None else tuple(spec["choices"]),
            deprecated=spec["deprecated"],
        )
        for flag, spec in data["options"].items()
    }


@cache
def load_contract(dynamo: str, sglang: str) -> Contract | None:
    """The pair's contract; None when either catalogue is missing."""
    sg_path, dy_path = catalogue_file("sglang", sglang), catalogue_file("dynamo", dynamo)
    if not sg_path.is_file() or not dy_path.is_file():
        return None
    sg, dy = _load_json(str(sg_path)), _load_json(str(dy_path))
    options = _options(sg, f"SGLang {sglang}")
    for flag, override in dy.get("sglang_option_overrides", {}).items():
        if flag in options and "choices" in override:
            old = options[flag]
            options[flag] = Option(old.flag, old.owner, old.nargs, old.kind, tuple(override["choices"]), old.deprecated)
    options.update(_options(dy, f"Dynamo {dynamo}"))
    sg_env, dy_env = sg["env"], dy["env"]
    return Contract(
        dynamo=dynamo,
        sglang=sglang,
        options=options,
        env_read=frozenset(sg_env["read"]) | frozenset(dy_env["read"]),
        env_declared_unread=frozenset(sg_env["declared_unread"]),
        env_prefixes=tuple(sg_env["dynamic_prefixes"] + dy_env["dynamic_prefixes"]),
        sgl_prefix_rewritten=bool(sg_env["sgl_prefix_rewritten"]),
        env_deprecated=dict(sg_env.get("deprecated", {})),
    )


@cache
def renames() -> dict[str, Any]:
    with open(ENGINES_DIR / "renames.yml", encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def _rename_hint(flag: str, role: str) -> str | None:
    entry = renames().get("flags", {}).get(flag)
    if not entry:
        return None
    use = entry.get("use")
    if isinstance(use, dict):
        use = use.get(role) or next(iter(use.values()))
    text = f"use {use}" if use else "remove it"
    return f"{text} ({entry['why']})" if entry.get("why") else text


def _env_hint(name: str, sglang: str) -> str | None:
    for entry in renames().get("env", {}).get(name, []):
        if "below" in entry and version_key(sglang) >= version_key(entry["below"]):
            continue
        if "from" in entry and version_key(sglang) < version_key(entry["from"]):
            continue
        return f"use {entry['use']}" if "use" in entry else str(entry["note"])
    return None


def _where_else(flag: str, contract: Contract) -> str:
    """', which SGLang 0.5.9 and 0.5.3.post2 still have' when other catalogued versions know the flag."""
    for engine, current in (("sglang", contract.sglang), ("dynamo", contract.dynamo)):
        others = [v for v in catalogued_versions(engine) if v != current and f"--{flag}" in _load_json(str(catalogue_file(engine, v)))["options"]]
        if others:
            return f" (it exists in {'SGLang' if engine == 'sglang' else 'Dynamo'} {', '.join(others)})"
    return ""


@dataclass(frozen=True)
class Origin:
    """Where a worker's flag or env var came from, so a problem names what the user changes."""

    where: str  # "group decode_0" (the user's) or "recipe dsr1-fp8-wideep (decode)"
    variable: str  # "gb200_decode_args['x']" or "flags.x"
    fix_prefix: str  # how to change it


def _abbreviation_of(flag: str, contract: Contract) -> list[str]:
    return sorted(f for f in contract.options if f.startswith(f"--{flag}"))


def check_flags(problems: Problems, contract: Contract, role: str, flags: Iterable[tuple[str, Any]], origin_of: Any) -> None:
    """Each (name, value) of one worker's resolved flags against the pair's options."""
    for name, value in flags:
        origin: Origin = origin_of(name)
        option = contract.options.get(f"--{name}")
        if option is None:
            _unknown(problems, contract, role, name, origin)
            continue
        if option.deprecated:
            message = str(option.deprecated.get("message") or "deprecated")
            if option.deprecated.get("refused"):
                problems.error(
                    "E-ENGINE-REMOVED-FLAG", origin.where, origin.variable, f"{option.owner} refuses --{name}: {message}", origin.fix_prefix + "remove it"
                )
            else:
                hint = _rename_hint(name, role)
                problems.warn(
                    "W-ENGINE-DEPRECATED-FLAG",
                    origin.where,
                    origin.variable,
                    f"--{name} is deprecated in {option.owner}: {message}",
                    origin.fix_prefix + (hint or "follow the engine's advice above"),
                )
        _check_value(problems, option, name, value, origin)


def _unknown(problems: Problems, contract: Contract, role: str, name: str, origin: Origin) -> None:
    hint = _rename_hint(name, role)
    candidates = _abbreviation_of(name, contract)
    if len(candidates) > 1:
        problems.error(
            "E-ENGINE-AMBIGUOUS-FLAG",
            origin.where,
            origin.variable,
            f"--{name} is not a flag of {contract.label}; argparse reads it as an abbreviation of "
            f"{' or '.join(candidates[:4])}{' ...' if len(candidates) > 4 else ''}, which is ambiguous: the worker exits at start",
            origin.fix_prefix + (hint or f"write one of {', '.join(c[2:] for c in candidates[:4])} in full"),
        )
    elif candidates:
        problems.error(
            "E-ENGINE-ABBREVIATED-FLAG",
            origin.where,
            origin.variable,
            f"--{name} is not a flag of {contract.label}; argparse would silently read it as {candidates[0]}",
            origin.fix_prefix + (hint or f"write {candidates[0][2:]} in full (an abbreviation changes meaning when a release adds a flag)"),
        )
    else:
        close = difflib.get_close_matches(f"--{name}", list(contract.options), n=3, cutoff=0.75)
        guess = f"did you mean {' or '.join(c[2:] for c in close)}?" if close else ""
        problems.error(
            "E-ENGINE-UNKNOWN-FLAG",
            origin.where,
            origin.variable,
            f"--{name} is not a flag of {contract.label}{_where_else(name, contract)}: the worker would exit with 'unrecognized arguments'",
            origin.fix_prefix + (hint or guess or "remove it (null), or pick a recipe for an engine that has it"),
        )


def _check_value(problems: Problems, option: Option, name: str, value: Any, origin: Origin) -> None:
    values = value if isinstance(value, list) else [value]
    if option.bare:
        if value is not True:
            problems.error(
                "E-ENGINE-BARE-FLAG",
                origin.where,
                origin.variable,
                f"--{name} takes no value in {option.owner}, got {value!r} (it would be read as a stray argument)",
                origin.fix_prefix + "true to set the flag, null to leave it out",
            )
        return
    if value is True:
        if option.nargs not in ("?", "*"):
            problems.error(
                "E-ENGINE-NEEDS-VALUE",
                origin.where,
                origin.variable,
                f"--{name} needs a value in {option.owner}; true renders it bare",
                origin.fix_prefix + ("give one of: " + ", ".join(option.choices[:12]) if option.choices else "give its value"),
            )
        return
    if isinstance(value, list) and option.nargs in (None, 1, "?"):
        problems.error(
            "E-ENGINE-FLAG-VALUES",
            origin.where,
            origin.variable,
            f"--{name} takes one value in {option.owner}, got a list of {len(value)}",
            origin.fix_prefix + "give a single value",
        )
        return
    if isinstance(option.nargs, int) and option.nargs > 1 and len(values) != option.nargs:
        problems.error(
            "E-ENGINE-FLAG-VALUES",
            origin.where,
            origin.variable,
            f"--{name} takes {option.nargs} values in {option.owner}, got {len(values)}",
            origin.fix_prefix + f"give a list of {option.nargs} values",
        )
        return
    for item in values:
        text = str(item)
        if "{" in text:
            continue  # an unfilled placeholder is reported by the recipe loader
        if option.kind in ("int", "float"):
            try:
                (int if option.kind == "int" else float)(text)
            except ValueError:
                problems.error(
                    "E-ENGINE-FLAG-TYPE",
                    origin.where,
                    origin.variable,
                    f"--{name} takes {'an integer' if option.kind == 'int' else 'a number'} in {option.owner}, got {item!r}",
                    origin.fix_prefix + "give a number",
                )
                continue
        if option.choices is not None:
            normal = text if option.kind != "int" else str(int(text))
            if normal not in option.choices:
                renamed = renames().get("values", {}).get(name, {}).get(text)
                fix = f"use {renamed['use']} ({renamed['why']})" if renamed else "use one of: " + ", ".join(option.choices[:16])
                problems.error(
                    "E-ENGINE-FLAG-CHOICE",
                    origin.where,
                    origin.variable,
                    f"{item!r} is not a choice of --{name} in {option.owner}",
                    origin.fix_prefix + fix,
                )


def check_env(problems: Problems, contract: Contract, env: Mapping[str, str], origin_of: Any) -> None:
    """Engine-namespace variables this version never reads, and renamed ones (warnings)."""
    for name, value in env.items():
        if not name.startswith(ENGINE_ENV_PREFIXES):
            continue
        origin: Origin = origin_of(name)
        if name in contract.env_deprecated:
            new = contract.env_deprecated[name]
            inverted = new is not None and "DISABLE" in name and name.replace("DISABLE", "ENABLE").split("_", 1)[1] == new.split("_", 1)[1]
            if inverted:
                message = f"{contract.label} copies {name}={value} to {new}={value}, which means the opposite of what {name} says"
                fix = f"set {new}: '{'0' if value in ('1', 'true', 'True') else '1'}' instead"
            elif new:
                message, fix = f"{name} is the old name of {new} in {contract.label} (still forwarded, with a warning)", f"use {new}"
            else:
                message = f"{name} is deprecated in {contract.label} and has no replacement variable"
                fix = "remove it (the engine's warning names a flag if one replaces it)"
            problems.warn("W-ENV-RENAMED", origin.where, origin.variable, message, origin.fix_prefix + fix)
        elif not contract.reads(name):
            declared = " (declared in SGLang's environ.py but never read)" if name in contract.env_declared_unread else ""
            hint = _env_hint(name, contract.sglang)
            close = difflib.get_close_matches(name, sorted(contract.env_read), n=2, cutoff=0.9)
            fix = hint or (f"did you mean {' or '.join(close)}?" if close else "remove it (null)")
            message = f"{contract.label} never reads {name}{declared}: it does nothing"
            problems.warn("W-ENV-NOOP", origin.where, origin.variable, message, origin.fix_prefix + fix)
