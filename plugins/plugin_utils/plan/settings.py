# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Typed reading of the gb200_* variables: one clear problem per bad value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .inventory import DEFAULTS, ENGINES, PLAYBOOK_VARIABLES, RESTART_POLICIES, WORKER_RESTART_POLICIES, Topology, check_container_name, host_value
from .problems import PLAN_WARNINGS, Problems
from .recipes import ENV_NAME_RE, FLAG_NAME_RE, Recipe, known_recipes, load_recipe

_SHM_RE = re.compile(r"^[0-9]+[bkmgBKMG]?$")
_ULIMIT_RE = re.compile(r"^([a-z]+)=(-1|unlimited|[0-9]+)(?::(-1|unlimited|[0-9]+))?$")
_GPUS_RE = re.compile(r"^(all|[0-9]+|device=[0-9A-Za-z,-]+)$")
# Dynamo's own bound for --migration-limit (a u32; dynamo/frontend/frontend_args.py, 1.0.2 and 1.6.1).
MIGRATION_LIMIT_MAX = 4294967295
_VOLUME_RE = re.compile(r"^/[^:]*:/[^:]*(?::(ro|rw))?$")


@dataclass(frozen=True)
class Settings:
    recipe: Recipe
    engine: str
    gpus_per_node: int
    frontend_port: int
    migration_limit: int  # Dynamo request migration: times one request may move to another worker
    image: str
    control_plane_image: str
    served_model_name: str
    model_dir: str
    model_mount: str
    kernel_cache_dir: str
    dist_init_port: int
    bootstrap_port: int
    etcd_port: int
    etcd_peer_port: int
    nats_port: int
    nats_monitor_port: int
    container_prefix: str
    shm_size: str
    ulimits: tuple[str, ...]  # docker run form: name=soft[:hard]
    gpus: str | None
    capabilities: tuple[str, ...]
    volumes: tuple[str, ...]
    restart_policy: str
    mocker_model_path: str
    mocker_args: dict[str, Any]
    # TEST DOUBLE of SGLang's multi-node process group (emulated clusters): the command that
    # runs every rank of a multi-tray mocker worker; None: the rank > 0 trays run nothing.
    mocker_group_command: tuple[str, ...] | None
    silenced: frozenset[str]
    secret_env: tuple[str, ...]  # names only; the values never enter the plan
    # gb200_worker_restart: policy (never | on-failure), retries, backoff_s, backoff_max_s
    worker_restart: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS["gb200_worker_restart"][0]))


@dataclass(frozen=True)
class WorkerSettings:
    args: dict[str, Any]
    env: dict[str, str | None]


def _where_all(hosts: Sequence[str]) -> str:
    return "hosts " + ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")


def agreed_value(
    name: str,
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    problems: Problems,
    scope_where: str,
    fix_scope: str,
) -> Any:
    """The value every host of a scope has; an error naming the odd hosts when they differ."""
    if not hosts:
        return DEFAULTS[name][0]
    first = host_value(hostvars, hosts[0], name)
    odd = [h for h in hosts[1:] if host_value(hostvars, h, name) != first]
    if odd:
        problems.error(
            "E-VAR-DIFFERS",
            scope_where,
            name,
            f"{_where_all(odd)} have a different value than {hosts[0]} ({first!r})",
            f"set {name} once for {fix_scope} (group_vars), not per host",
        )
    return first


def _int(problems: Problems, name: str, value: Any, low: int, high: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.error(
            "E-BAD-TYPE",
            where,
            name,
            f"{value!r} is not an integer in [{low}, {high}]",
            f"set {name} to an integer between {low} and {high}",
        )
        return low
    return value


def _str(problems: Problems, name: str, value: Any, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        problems.error("E-BAD-TYPE", where, name, f"{value!r} is not a non-empty string", f"set {name} to a string")
        return None
    return value


def _str_list(problems: Problems, name: str, value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.error("E-BAD-TYPE", where, name, f"{value!r} is not a list of strings", f"set {name} to a YAML list of strings")
        return []
    return list(value)


def check_args(problems: Problems, name: str, value: Any, where: str) -> dict[str, Any]:
    """gb200_<role>_args: flag (no '--') -> scalar, list, true (bare flag) or null (remove)."""
    if not isinstance(value, dict):
        problems.error(
            "E-BAD-TYPE",
            where,
            name,
            f"{value!r} is not a mapping of flag -> value",
            f"write {name} as a YAML mapping, e.g. {{'mem-fraction-static': 0.8}}",
        )
        return {}
    out: dict[str, Any] = {}
    for flag, flag_value in value.items():
        if not isinstance(flag, str) or not FLAG_NAME_RE.match(flag):
            fix = f"write '{flag.lstrip('-')}'" if isinstance(flag, str) and flag.startswith("-") else "use the flag's long name"
            problems.error(
                "E-BAD-FLAG-NAME",
                where,
                f"{name}[{flag!r}]",
                "flag names are written without the leading '--', in lower case",
                fix,
            )
            continue
        items = flag_value if isinstance(flag_value, list) else [flag_value]
        if (
            isinstance(flag_value, dict)
            or any(isinstance(i, (dict, list)) for i in items)
            or (isinstance(flag_value, list) and (not flag_value or any(isinstance(i, bool) or i is None for i in flag_value)))
        ):
            problems.error(
                "E-BAD-FLAG-VALUE",
                where,
                f"{name}[{flag!r}]",
                f"{flag_value!r} is not a flag value",
                "use a string or number, true for a bare flag, null to remove it, or a non-empty list of values",
            )
            continue
        out[flag] = flag_value
    return out


def check_env(problems: Problems, name: str, value: Any, where: str) -> dict[str, str | None]:
    if not isinstance(value, dict):
        problems.error(
            "E-BAD-TYPE",
            where,
            name,
            f"a {type(value).__name__} is not a mapping of NAME -> value",  # the value itself may hold a credential
            f"write {name} as a YAML mapping, e.g. {{'NCCL_DEBUG': 'INFO'}}",
        )
        return {}
    out: dict[str, str | None] = {}
    for env_name, env_value in value.items():
        if not isinstance(env_name, str) or not ENV_NAME_RE.match(env_name):
            problems.error(
                "E-BAD-ENV-NAME",
                where,
                f"{name}[{env_name!r}]",
                "not a valid environment variable name",
                "use letters, digits and '_', not starting with a digit",
            )
        elif is_secret_name(env_name) and env_value is not None:
            problems.error(
                "E-SECRET-IN-ENV",
                where,
                f"{name}[{env_name!r}]",
                f"{env_name} looks like a credential: as plain environment its value would be written into plan.json, "
                "the launch scripts, Ansible's output and `docker inspect`",
                f"move it to gb200_secret_env ({{{env_name}: '{{{{ vault_... }}}}'}}): the trays get it through a root-only env file",
            )
        elif isinstance(env_value, bool):
            problems.error(
                "E-BAD-ENV-VALUE",
                where,
                f"{name}[{env_name!r}]",
                f"{env_value!r} is a YAML boolean, which would reach the process as an arbitrary string",
                "quote the exact string the process expects, e.g. '1', 'true' or 'True'",
            )
        elif env_value is None or isinstance(env_value, (str, int, float)):
            out[env_name] = None if env_value is None else str(env_value)
        else:
            problems.error(
                "E-BAD-ENV-VALUE",
                where,
                f"{name}[{env_name!r}]",
                f"{env_value!r} is not a string",
                "give a quoted string (null removes a recipe variable)",
            )
    return out


# A name like these in plain environment is a credential about to be written into plan.json,
# launch scripts and `docker inspect`; it belongs in gb200_secret_env.
# Whole name segments, so that SGLANG_..._DISPATCH_TOKENS_PER_RANK is not taken for one.
_SECRET_NAME_RE = re.compile(r"(^|_)(TOKEN|KEY|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(_|$)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME_RE.search(name))


def check_unknown_variables(problems: Problems, hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]) -> None:
    """A gb200_* variable the collection does not know is a typo that would silently do nothing."""
    known = set(DEFAULTS) | set(PLAYBOOK_VARIABLES)
    where_set: dict[str, list[str]] = {}
    for host in hosts:
        for name in hostvars.get(host, {}):
            if name.startswith("gb200_") and name not in known:
                where_set.setdefault(name, []).append(host)
    for name, on in sorted(where_set.items()):
        close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.75)
        problems.error(
            "E-UNKNOWN-VARIABLE",
            _where_all(on),
            name,
            "no such variable: wideep.gb200 would ignore it",
            (f"did you mean {' or '.join(close)}?" if close else "remove it")
            + " (the variables are listed in roles/plan/meta/argument_specs.yml and the README)",
        )


def read_settings(
    topology: Topology,
    trays: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    problems: Problems,
) -> Settings | None:
    everyone = list(dict.fromkeys(([topology.head] if topology.head else []) + list(trays)))
    where = "inventory"
    check_unknown_variables(problems, everyone, hostvars)
    values = {
        name: agreed_value(name, everyone, hostvars, problems, "groups gb200 and dynamo_head", "all trays")
        for name, (_default, scope) in DEFAULTS.items()
        if scope == "global"
    }

    recipe_name = _str(problems, "gb200_recipe", values["gb200_recipe"], where)
    recipe = None
    if recipe_name is not None:
        recipe = load_recipe(recipe_name)
        if recipe is None:
            problems.error(
                "E-UNKNOWN-RECIPE",
                where,
                "gb200_recipe",
                f"no recipe named {recipe_name!r}",
                f"use one of: {', '.join(known_recipes())} (or the path of a recipe .yml file)",
            )
    engine = values["gb200_engine"]
    if engine not in ENGINES:
        problems.error(
            "E-BAD-ENGINE",
            where,
            "gb200_engine",
            f"{engine!r} is not an engine",
            f"use one of: {', '.join(ENGINES)}",
        )
    gpus_per_node = _int(problems, "gb200_gpus_per_node", values["gb200_gpus_per_node"], 1, 8, where)
    ports = {
        name: _int(problems, name, values[name], 1, 65535, where)
        for name in ("gb200_frontend_port", "gb200_etcd_port", "gb200_etcd_peer_port", "gb200_nats_port", "gb200_nats_monitor_port")
    }
    migration_limit = _int(problems, "gb200_migration_limit", values["gb200_migration_limit"], 0, MIGRATION_LIMIT_MAX, where)
    optional_ports = {
        name: None if values[name] is None else _int(problems, name, values[name], 1, 65535, where) for name in ("gb200_dist_init_port", "gb200_bootstrap_port")
    }
    strings = {
        name: _str(problems, name, values[name], where, optional=True)
        for name in (
            "gb200_head_interface",
            "gb200_image",
            "gb200_control_plane_image",
            "gb200_served_model_name",
            "gb200_model_dir",
            "gb200_kernel_cache_dir",
            "gb200_mocker_model_path",
            "gb200_container_gpus",
        )
    }
    for name in ("gb200_model_dir", "gb200_kernel_cache_dir"):
        if strings[name] is not None and not str(strings[name]).startswith("/"):
            problems.error("E-BAD-PATH", where, name, f"{strings[name]!r} is not an absolute path", "give an absolute path on the trays")
    model_mount = _str(problems, "gb200_model_mount", values["gb200_model_mount"], where) or "/model/"
    if not model_mount.startswith("/"):
        problems.error(
            "E-BAD-PATH", where, "gb200_model_mount", f"{model_mount!r} is not an absolute path", "give an absolute path inside the container, e.g. /model/"
        )
    prefix = _str(problems, "gb200_container_prefix", values["gb200_container_prefix"], where) or "wideep"
    if not check_container_name(prefix):
        problems.error("E-BAD-NAME", where, "gb200_container_prefix", f"{prefix!r} is not a valid container name prefix", "use letters, digits, '_', '.', '-'")
    shm = str(values["gb200_container_shm_size"])
    if not _SHM_RE.match(shm):
        problems.error("E-BAD-TYPE", where, "gb200_container_shm_size", f"{shm!r} is not a size", "write it like docker's --shm-size, e.g. 10G")
    ulimits = _str_list(problems, "gb200_container_ulimits", values["gb200_container_ulimits"], where)
    for item in ulimits:
        if not _ULIMIT_RE.match(item):
            problems.error(
                "E-BAD-ULIMIT",
                where,
                "gb200_container_ulimits",
                f"{item!r} is not NAME=SOFT[:HARD]",
                "write each like docker's --ulimit, e.g. memlock=-1 or nofile=65536:65536",
            )
    volumes = _str_list(problems, "gb200_container_volumes", values["gb200_container_volumes"], where)
    for item in volumes:
        if not _VOLUME_RE.match(item):
            problems.error(
                "E-BAD-VOLUME", where, "gb200_container_volumes", f"{item!r} is not /host:/container[:ro|rw]", "write absolute host and container paths"
            )
    capabilities = _str_list(problems, "gb200_container_capabilities", values["gb200_container_capabilities"], where)
    silenced = _str_list(problems, "gb200_silence_warnings", values["gb200_silence_warnings"], where)
    for code in silenced:
        if code not in PLAN_WARNINGS:
            close = difflib.get_close_matches(code, sorted(PLAN_WARNINGS), n=1, cutoff=0.6)
            problems.error(
                "E-UNKNOWN-WARNING-CODE",
                where,
                "gb200_silence_warnings",
                f"{code!r} is not a warning code of the plan",
                (f"did you mean {close[0]}? " if close else "") + "the codes are: " + ", ".join(sorted(PLAN_WARNINGS)),
            )
    secret_env = _secret_names(problems, values["gb200_secret_env"], where)
    gpus = strings["gb200_container_gpus"]
    if gpus is not None and not _GPUS_RE.match(gpus):
        problems.error(
            "E-BAD-GPUS",
            where,
            "gb200_container_gpus",
            f"{gpus!r} is not a docker --gpus value",
            "use all, a count such as 4, device=0,1, or null for no GPUs",
        )
    restart = values["gb200_restart_policy"]
    if restart not in RESTART_POLICIES:
        problems.error("E-BAD-RESTART", where, "gb200_restart_policy", f"{restart!r} is not a restart policy", f"use one of: {', '.join(RESTART_POLICIES)}")
    mocker_args = check_args(problems, "gb200_mocker_args", values["gb200_mocker_args"], where)
    group_command = _group_command(problems, values["gb200_mocker_group_command"], engine, where)
    worker_restart = _worker_restart(problems, values["gb200_worker_restart"], where)
    problems.silenced = frozenset(silenced)
    if recipe is None:
        return None
    image = strings["gb200_image"] or recipe.image
    served = strings["gb200_served_model_name"] or recipe.served_model_name
    return Settings(
        recipe=recipe,
        engine=str(engine),
        gpus_per_node=gpus_per_node,
        frontend_port=ports["gb200_frontend_port"],
        migration_limit=migration_limit,
        image=image,
        control_plane_image=strings["gb200_control_plane_image"] or image,
        served_model_name=served,
        model_dir=strings["gb200_model_dir"] or f"/models/{recipe.hf_repo}",
        model_mount=model_mount,
        kernel_cache_dir=(strings["gb200_kernel_cache_dir"] or "/var/lib/wideep/kernel-cache").rstrip("/"),
        dist_init_port=optional_ports["gb200_dist_init_port"] or recipe.dist_init_port,
        bootstrap_port=optional_ports["gb200_bootstrap_port"] or recipe.bootstrap_port,
        etcd_port=ports["gb200_etcd_port"],
        etcd_peer_port=ports["gb200_etcd_peer_port"],
        nats_port=ports["gb200_nats_port"],
        nats_monitor_port=ports["gb200_nats_monitor_port"],
        container_prefix=prefix,
        shm_size=shm,
        ulimits=tuple(ulimits),
        gpus=strings["gb200_container_gpus"],
        capabilities=tuple(capabilities),
        volumes=tuple(volumes),
        restart_policy=str(restart),
        mocker_model_path=strings["gb200_mocker_model_path"] or served,
        mocker_args=mocker_args,
        mocker_group_command=group_command,
        silenced=frozenset(silenced),
        secret_env=secret_env,
        worker_restart=worker_restart,
    )


def _group_command(problems: Problems, value: Any, engine: Any, where: str) -> tuple[str, ...] | None:
    """gb200_mocker_group_command: null, or the argv prefix (a non-empty list of strings) of the
    process-group double that every rank of a multi-tray mocker worker runs."""
    name = "gb200_mocker_group_command"
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        problems.error(
            "E-BAD-TYPE",
            where,
            name,
            f"{value!r} is not a non-empty list of non-empty strings",
            f"set {name} to the group double's command as a list, e.g. [python3, /opt/wideep-emu/group_double.py], or null",
        )
        return None
    if engine != "mocker":
        problems.error(
            "E-GROUP-COMMAND-ENGINE",
            where,
            name,
            f"only the mocker engine runs a process-group double; gb200_engine is {engine!r}, whose ranks form their real group",
            f"remove {name} (or set gb200_engine: mocker on an emulated cluster)",
        )
        return None
    return tuple(value)


def _worker_restart(problems: Problems, value: Any, where: str) -> dict[str, Any]:
    """gb200_worker_restart: the defaults, overridden key by key; one problem per bad key."""
    name = "gb200_worker_restart"
    out: dict[str, Any] = dict(DEFAULTS[name][0])
    if not isinstance(value, Mapping):
        problems.error(
            "E-BAD-TYPE",
            where,
            name,
            f"a {type(value).__name__} is not a mapping",
            "write it as a mapping, e.g. {policy: on-failure, retries: 3, backoff_s: 10, backoff_max_s: 300}",
        )
        return out
    for key, item in value.items():
        if key not in out:
            close = difflib.get_close_matches(str(key), sorted(out), n=1, cutoff=0.6)
            problems.error(
                "E-BAD-WORKER-RESTART",
                where,
                f"{name}[{key!r}]",
                "no such key",
                (f"did you mean {close[0]}? " if close else "") + "the keys are: " + ", ".join(sorted(out)),
            )
        elif key == "policy":
            if item not in WORKER_RESTART_POLICIES:
                choices = ", ".join(WORKER_RESTART_POLICIES)
                problems.error("E-BAD-WORKER-RESTART", where, f"{name}['policy']", f"{item!r} is not a policy", f"use one of: {choices}")
            else:
                out[key] = item
        else:
            low = 0 if key == "retries" else 1
            out[key] = _int(problems, f"{name}[{key!r}]", item, low, 86400, where)
    if out["backoff_max_s"] < out["backoff_s"]:
        problems.error(
            "E-BAD-WORKER-RESTART",
            where,
            f"{name}['backoff_max_s']",
            f"the cap {out['backoff_max_s']} s is below the first back-off {out['backoff_s']} s",
            "set backoff_max_s to at least backoff_s",
        )
    return out


def _secret_names(problems: Problems, value: Any, where: str) -> tuple[str, ...]:
    name = "gb200_secret_env"
    if not isinstance(value, Mapping):
        problems.error(
            "E-BAD-TYPE",
            where,
            name,
            f"a {type(value).__name__} is not a mapping of NAME -> secret value",
            "write it as a mapping, e.g. {HF_TOKEN: '{{ vault_hf_token }}'}",
        )
        return ()
    bad = [n for n in value if not isinstance(n, str) or not ENV_NAME_RE.match(n)]
    for item in bad:
        problems.error("E-BAD-ENV-NAME", where, f"{name}[{item!r}]", "not a valid environment variable name", "use letters, digits and '_'")
    return tuple(sorted(n for n in value if n not in bad))


def read_worker_settings(
    worker_name: str,
    role: str,
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    problems: Problems,
) -> WorkerSettings:
    where = f"group {worker_name}"
    args_name, env_name = f"gb200_{role}_args", f"gb200_{role}_env"
    args = agreed_value(args_name, hosts, hostvars, problems, where, f"group {worker_name} or {role}")
    env = agreed_value(env_name, hosts, hostvars, problems, where, f"group {worker_name} or {role}")
    return WorkerSettings(args=check_args(problems, args_name, args, where), env=check_env(problems, env_name, env, where))
