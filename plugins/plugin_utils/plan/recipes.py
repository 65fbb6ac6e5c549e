# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Recipes: named flag and env sets (YAML data under recipes/), loaded and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROLES = ("prefill", "decode")
# The placeholders a recipe or a user's flag value may use; the plan fills them per tray.
PLACEHOLDERS = frozenset(
    {
        "served_model_name",
        "model_path",
        "role",
        "head_ip",
        "dist_init_addr",
        "dist_init_port",
        "bootstrap_port",
        "nnodes",
        "node_rank",
        "gpus",
    }
)
_PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
FLAG_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes"


class RecipeError(ValueError):
    """A recipe file is malformed (a defect in the recipe, not in the inventory)."""


RECIPE_KEYS = frozenset({"name", "description", "source", "model", "hardware", "engine", "workdir", "module", "ports", "flags", "env", "kernel_caches"})
# The JIT kernel caches a recipe's path builds (wideep.gb200.kernel_cache carries them; deep_gemm
# is also precompiled). docs/kernel-cache.md says which variable each engine version reads.
KERNEL_CACHES = ("deep_gemm", "triton", "flashinfer", "tilelang", "inductor")
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*([a-z]+[0-9]*)?(\.post[0-9]+)?$")


@dataclass(frozen=True)
class EnginePin:
    """The engine a recipe is written for: exact versions and the image that carries them."""

    dynamo: str
    sglang: str
    image: str
    # Other (Dynamo, SGLang) pairs whose real parsers accept the recipe (tests/contract).
    also_parses: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, str]:
        return {"dynamo": self.dynamo, "sglang": self.sglang, "image": self.image}


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    source: str
    served_model_name: str
    hf_repo: str
    quantization: str
    routed_experts: int
    max_context_length: int
    hardware: dict[str, Any]
    engine: EnginePin
    workdir: str
    module: str
    dist_init_port: int
    bootstrap_port: int
    # flag/env name -> {role: value}; a role absent from the inner dict has no such flag.
    flags: dict[str, dict[str, Any]]
    env: dict[str, dict[str, str]]
    kernel_caches: tuple[str, ...] = ()

    @property
    def image(self) -> str:
        return self.engine.image

    def role_flags(self, role: str) -> dict[str, Any]:
        return {k: v[role] for k, v in self.flags.items() if role in v}

    def role_env(self, role: str) -> dict[str, str]:
        return {k: v[role] for k, v in self.env.items() if role in v}


def placeholders_in(value: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(value))


def substitute(value: str, context: dict[str, str]) -> str:
    """Replace {name} for the known placeholders only; other braces stay as written."""
    return _PLACEHOLDER_RE.sub(lambda m: context.get(m.group(1), m.group(0)), value)


def _split_roles(where: str, name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        unknown = set(value) - set(ROLES)
        if unknown:
            raise RecipeError(f"{where}: {name}: role keys must be prefill/decode, got {sorted(unknown)}")
        return dict(value)
    return dict.fromkeys(ROLES, value)


def _require(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RecipeError(f"{where}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _version(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not VERSION_RE.match(value):
        raise RecipeError(f"{where}: engine.{key} must be an exact release version as a quoted string (e.g. '0.5.21'), got {value!r}")
    return value


def _engine_pin(data: dict[str, Any], where: str) -> EnginePin:
    engine = _require(data, "engine", dict, where)
    unknown = set(engine) - {"dynamo", "sglang", "image", "also_parses"}
    if unknown:
        raise RecipeError(f"{where}: engine: unknown keys {sorted(unknown)} (dynamo, sglang, image, also_parses)")
    also = engine.get("also_parses") or []
    if not isinstance(also, list) or not all(isinstance(e, dict) for e in also):
        raise RecipeError(f"{where}: engine.also_parses is a list of {{dynamo, sglang}} mappings")
    return EnginePin(
        dynamo=_version(engine, "dynamo", where),
        sglang=_version(engine, "sglang", where),
        image=_require(engine, "image", str, where),
        also_parses=tuple((_version(e, "dynamo", where), _version(e, "sglang", where)) for e in also),
    )


def parse_recipe(data: Any, where: str) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: a recipe is a mapping")
    unknown = set(data) - RECIPE_KEYS
    if unknown:
        raise RecipeError(f"{where}: unknown keys {sorted(unknown)}; a recipe has {', '.join(sorted(RECIPE_KEYS))}")
    model = _require(data, "model", dict, where)
    ports = _require(data, "ports", dict, where)
    hardware = _require(data, "hardware", dict, where)
    for key, kind in (("min_compute_capability", str), ("min_driver_branch", int), ("imex", bool), ("gpudirect_rdma", bool), ("disk_bytes", int)):
        _require(hardware, key, kind, where)
    flags_in = _require(data, "flags", dict, where)
    env_in = _require(data, "env", dict, where)
    flags: dict[str, dict[str, Any]] = {}
    for name, value in flags_in.items():
        if not isinstance(name, str) or not FLAG_NAME_RE.match(name):
            raise RecipeError(f"{where}: flag {name!r} must be written without '--', lower case")
        flags[name] = _split_roles(where, name, value)
        for role_value in flags[name].values():
            for text in role_value if isinstance(role_value, list) else [role_value]:
                if isinstance(text, str) and placeholders_in(text) - PLACEHOLDERS:
                    raise RecipeError(
                        f"{where}: flag {name}: unknown placeholder(s) {sorted(placeholders_in(text) - PLACEHOLDERS)}; known: {sorted(PLACEHOLDERS)}"
                    )
    env: dict[str, dict[str, str]] = {}
    for name, value in env_in.items():
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise RecipeError(f"{where}: env name {name!r} is not a valid variable name")
        per_role = _split_roles(where, name, value)
        for role_value in per_role.values():
            if not isinstance(role_value, str):
                raise RecipeError(f"{where}: env {name}: values are quoted strings, got {role_value!r}")
        env[name] = per_role
    return Recipe(
        name=_require(data, "name", str, where),
        description=_require(data, "description", str, where),
        source=_require(data, "source", str, where),
        served_model_name=_require(model, "served_model_name", str, where),
        hf_repo=_require(model, "hf_repo", str, where),
        quantization=_require(model, "quantization", str, where),
        routed_experts=_require(model, "routed_experts", int, where),
        max_context_length=_require(model, "max_context_length", int, where),
        hardware=hardware,
        engine=_engine_pin(data, where),
        workdir=_require(data, "workdir", str, where),
        module=_require(data, "module", str, where),
        dist_init_port=_require(ports, "dist_init", int, where),
        bootstrap_port=_require(ports, "bootstrap", int, where),
        flags=flags,
        env=env,
        kernel_caches=_kernel_caches(data, where),
    )


def _kernel_caches(data: dict[str, Any], where: str) -> tuple[str, ...]:
    value = data.get("kernel_caches") or []
    if not isinstance(value, list) or any(v not in KERNEL_CACHES for v in value):
        raise RecipeError(f"{where}: kernel_caches is a list of {', '.join(KERNEL_CACHES)}, got {value!r}")
    return tuple(dict.fromkeys(value))


@cache
def _load_file(path: str) -> Recipe:
    with open(path, encoding="utf-8") as handle:
        return parse_recipe(yaml.safe_load(handle), f"recipe file {path}")


def known_recipes(directory: Path = RECIPES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yml"))


def load_recipe(name: str, directory: Path = RECIPES_DIR) -> Recipe | None:
    """The recipe called name (bundled), or a recipe file path; None when there is none."""
    candidate = Path(name)
    if candidate.suffix in (".yml", ".yaml") and candidate.is_file():
        return _load_file(str(candidate.resolve()))
    path = directory / f"{name}.yml"
    if not FLAG_NAME_RE.match(name) or not path.is_file():
        return None
    recipe = _load_file(str(path))
    if recipe.name != name:
        raise RecipeError(f"recipe file {path} declares name {recipe.name!r}; it must match the file name")
    return recipe
