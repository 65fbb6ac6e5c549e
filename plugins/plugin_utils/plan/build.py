# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The plan: inventory groups + gb200_* variables -> every tray's exact launch spec.

Computed once for the whole inventory on the controller. Pure: no Ansible, no I/O other
than reading the bundled recipe files. Raises PlanError listing every error at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from ..engine.contract import Contract, Origin, catalogue_file, load_contract
from ..engine.contract import check_env as check_engine_env
from ..engine.contract import check_flags as check_engine_flags
from . import kernel_cache
from .flags import FlagView, fill, merge_flags, to_argv
from .inventory import ALL_GROUP, HEAD_GROUP, Topology, Worker, read_topology
from .problems import PlanError, Problems
from .rules import (
    Parallelism,
    WorkerFacts,
    check_env,
    check_moe,
    check_pairing,
    check_parallelism,
    check_sizes,
    check_user_input,
)
from .settings import Settings, read_settings, read_worker_settings

PLAN_VERSION = 1
LABEL = "wideep.gb200"
# With --enable-dp-attention SGLang binds dist-init port + 1..5 for its ZMQ sockets
# (PortArgs.init_new; docs/gb200-facts.md §4).
DP_ATTENTION_ZMQ_PORTS = 5
# Secret environment (gb200_secret_env) reaches a container through a root-only file here.
SECRETS_DIR = "/etc/wideep/secrets"
# gb200_worker_restart: the restart agent's script on the trays (roles/sglang_worker copies it
# there) and inside its container, and the Docker socket it drives.
AGENT_SCRIPT = "/etc/wideep/agent/worker_agent.py"
AGENT_SCRIPT_MOUNT = "/opt/wideep/worker_agent.py"
DOCKER_SOCKET = "/var/run/docker.sock"


# ---------------------------------------------------------------- the plan's output
# Plain dicts (the plan becomes an Ansible fact and plan.json), typed for the code that builds them.


class PortUse(TypedDict):
    port: int
    use: str
    variable: str


class ContainerSpec(TypedDict):
    """Keys are community.docker.docker_container options, plus kind, ports, secret_env, env_file."""

    name: str
    kind: str
    image: str
    command: list[str]
    env: dict[str, str]
    working_dir: str | None
    network_mode: str
    ipc_mode: str | None
    shm_size: str | None
    ulimits: list[str]
    capabilities: list[str]
    gpus: str | None
    device_requests: list[dict[str, Any]]
    volumes: list[str]
    restart_policy: str
    ports: list[PortUse]
    secret_env: list[str]
    env_file: str | None
    labels: NotRequired[dict[str, str]]


class HostPlan(TypedDict):
    address: str | None
    groups: list[str]
    worker: str | None
    role: str | None
    node_rank: int | None
    nnodes: int | None
    launch: bool
    argv: list[str] | None
    env: dict[str, str] | None
    containers: list[ContainerSpec]
    ports: NotRequired[list[PortUse]]
    engine: NotRequired[dict[str, str]]
    note: NotRequired[str]


class WorkerPlan(TypedDict):
    name: str
    role: str
    hosts: list[str]
    head: str
    head_ip: str
    nnodes: int
    gpus: int
    tp_size: int
    dp_size: int
    ep_size: int
    dist_init_addr: str
    bootstrap_port: int
    launch_hosts: list[str]
    # gb200_worker_restart for this worker: policy (never | on-failure: restart agents run on its
    # trays), retries, backoff_s, backoff_max_s, and key (its restart record in etcd; None: no agent).
    restart: dict[str, Any]
    # The worker's JIT kernel cache (plan/kernel_cache.py): config, dir, mount, env, deep_gemm,
    # caches, material, and compile_argv (the SGLang flags per rank, for sglang.compile_deep_gemm).
    kernel_cache: dict[str, Any] | None


class ControlPlane(TypedDict):
    host: str
    address: str
    etcd_endpoints: str
    nats_server: str
    etcd_port: int
    nats_port: int
    nats_monitor_port: int
    etcd_health_url: str
    nats_health_url: str


class Frontend(TypedDict):
    host: str
    address: str
    port: int
    url: str


class PlanDict(TypedDict):
    version: int
    recipe: dict[str, str]
    engine: str
    engine_versions: dict[str, str]
    served_model_name: str
    image: str
    gpus_per_node: int
    model: dict[str, Any]
    hardware: dict[str, Any]
    control_plane: ControlPlane | dict[str, Any]
    frontend: Frontend | dict[str, Any]
    workers: list[WorkerPlan]
    expected_instances: dict[str, int]
    hosts: dict[str, HostPlan]
    warnings: list[dict[str, str]]


def _url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _ulimits(settings: Settings) -> list[str]:
    """docker run's name=soft[:hard] -> community.docker's name:soft:hard."""
    out = []
    for item in settings.ulimits:
        name, _sep, values = item.partition("=")
        soft, _sep, hard = values.partition(":")
        soft = "-1" if soft == "unlimited" else soft
        hard = soft if not hard else ("-1" if hard == "unlimited" else hard)
        out.append(f"{name}:{soft}:{hard}")
    return out


def _container(
    settings: Settings,
    *,
    name: str,
    kind: str,
    image: str,
    command: list[str],
    env: dict[str, str],
    labels: dict[str, str],
    ports: list[PortUse],
    working_dir: str | None = None,
    gpus: bool = False,
    volumes: Sequence[str] = (),
    tuned: bool = False,
    secret_env: Sequence[str] = (),
    restart_policy: str | None = None,
) -> ContainerSpec:
    """A container spec whose keys are community.docker.docker_container options.

    secret_env holds names only: their values never enter the plan; the containers role writes
    them to env_file (root only) and hands them to Docker with no_log."""
    spec: ContainerSpec = {
        "name": name,
        "kind": kind,
        "image": image,
        "command": command,
        "env": env,
        "working_dir": working_dir,
        "network_mode": "host",
        "ipc_mode": "host" if tuned else None,
        "shm_size": settings.shm_size if tuned else None,
        "ulimits": _ulimits(settings) if tuned else [],
        "capabilities": list(settings.capabilities) if tuned else [],
        "gpus": settings.gpus if gpus else None,
        "device_requests": _device_requests(settings.gpus) if gpus else [],
        "volumes": list(volumes),
        "restart_policy": restart_policy or settings.restart_policy,
        "ports": ports,
        "secret_env": list(secret_env),
        "env_file": f"{SECRETS_DIR}/{name}.env" if secret_env else None,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    spec["labels"] = {f"{LABEL}.{k}": v for k, v in labels.items()} | {f"{LABEL}.spec": digest}
    return spec


def _device_requests(gpus: str | None) -> list[dict[str, Any]]:
    """docker --gpus all | N | device=0,1 as the Engine API's DeviceRequests."""
    if not gpus:
        return []
    request: dict[str, Any] = {"driver": "nvidia", "capabilities": [["gpu"]]}
    if gpus == "all":
        request["count"] = -1
    elif gpus.isdigit():
        request["count"] = int(gpus)
    else:
        request["device_ids"] = gpus.removeprefix("device=").strip('"').split(",")
    return [request]


def _mocker_argv(settings: Settings, role: str, par: Parallelism, bootstrap_port: int) -> list[str]:
    """Dynamo's CPU engine standing in for a whole multi-tray SGLang worker (emulated clusters)."""
    flags: list[tuple[str, Any]] = [
        ("model-path", settings.mocker_model_path),
        ("model-name", settings.served_model_name),
        # Dynamo 1.6.1's mocker simulates vLLM's scheduler unless told otherwise; the workers
        # it stands in for are SGLang's. A mocker without the flag (1.0.2 had none):
        # gb200_mocker_args: {engine-type: null}.
        ("engine-type", "sglang"),
        ("disaggregation-mode", role),
        ("data-parallel-size", par.dp),
    ]
    if role == "prefill":
        flags.append(("bootstrap-ports", bootstrap_port))
    flags = merge_flags(dict(flags), settings.mocker_args)
    return ["python3", "-m", "dynamo.mocker", *to_argv(flags)]


def _migration_on_worker(contract: Contract | None) -> bool:
    """Whether the pinned Dynamo's workers, not its frontend, read --migration-limit: 0.6.1's
    dynamo.sglang declares it (its catalogue lists it); 1.0.2's and 1.6.1's frontend declares it
    (dynamo/frontend/frontend_args.py) and their workers do not."""
    return contract is not None and "--migration-limit" in contract.options


def _head_containers(settings: Settings, head_ip: str, frontend_migration: bool) -> list[ContainerSpec]:
    prefix, host = settings.container_prefix, _url_host(head_ip)
    cp_env = {"ETCD_ENDPOINTS": f"http://{host}:{settings.etcd_port}", "NATS_SERVER": f"nats://{host}:{settings.nats_port}"}
    etcd = _container(
        settings,
        name=f"{prefix}-etcd",
        kind="etcd",
        image=settings.control_plane_image,
        command=[
            "etcd",
            "--name",
            f"{prefix}-etcd",
            "--data-dir",
            "/tmp/etcd-data",
            "--listen-client-urls",
            f"http://0.0.0.0:{settings.etcd_port}",
            "--advertise-client-urls",
            f"http://{host}:{settings.etcd_port}",
            "--listen-peer-urls",
            f"http://0.0.0.0:{settings.etcd_peer_port}",
            "--initial-advertise-peer-urls",
            f"http://{host}:{settings.etcd_peer_port}",
            "--initial-cluster",
            f"{prefix}-etcd=http://{host}:{settings.etcd_peer_port}",
        ],
        env={},
        labels={"kind": "etcd"},
        ports=[
            {"port": settings.etcd_port, "use": "etcd client", "variable": "gb200_etcd_port"},
            {"port": settings.etcd_peer_port, "use": "etcd peer", "variable": "gb200_etcd_peer_port"},
        ],
    )
    nats = _container(
        settings,
        name=f"{prefix}-nats",
        kind="nats",
        image=settings.control_plane_image,
        command=["nats-server", "-js", "--store_dir", "/tmp/nats-data", "-p", str(settings.nats_port), "-m", str(settings.nats_monitor_port)],
        env={},
        labels={"kind": "nats"},
        ports=[
            {"port": settings.nats_port, "use": "NATS client", "variable": "gb200_nats_port"},
            {"port": settings.nats_monitor_port, "use": "NATS monitoring", "variable": "gb200_nats_monitor_port"},
        ],
    )
    frontend = _container(
        settings,
        name=f"{prefix}-frontend",
        kind="frontend",
        image=settings.image,
        command=["python3", "-m", "dynamo.frontend", f"--http-port={settings.frontend_port}"]
        + ([f"--migration-limit={settings.migration_limit}"] if frontend_migration else []),
        env=cp_env,
        labels={"kind": "frontend"},
        working_dir=settings.recipe.workdir if settings.engine == "sglang" else None,
        volumes=[f"{settings.model_dir}:{settings.model_mount}:ro"],
        ports=[{"port": settings.frontend_port, "use": "Dynamo frontend HTTP", "variable": "gb200_frontend_port"}],
        secret_env=settings.secret_env,
    )
    return [etcd, nats, frontend]


def _check_ports(problems: Problems, hosts: Mapping[str, HostPlan]) -> None:
    for host, spec in hosts.items():
        seen: dict[int, str] = {}
        for entry in spec["ports"]:
            port, use = entry["port"], entry["use"]
            if port in seen and seen[port] != use:
                problems.error(
                    "E-PORT-COLLISION",
                    f"host {host}",
                    entry.get("variable", "ports"),
                    f"port {port} is wanted by both {seen[port]} and {use}",
                    "give one of them another port (gb200_frontend_port, gb200_etcd_port, gb200_nats_port, "
                    "gb200_dist_init_port, gb200_bootstrap_port or the worker's args)",
                )
            seen.setdefault(port, use)


# ---------------------------------------------------------------- the pipeline
# topology -> settings -> engine contract -> control plane -> workers (checked, then their
# per-rank argv and containers) -> per-host plans -> port check. Each step returns what it
# makes; nothing writes into what an earlier step made.


def build_plan(groups: Mapping[str, Sequence[str]], hostvars: Mapping[str, Mapping[str, Any]]) -> PlanDict:
    """The whole deployment's plan; raises PlanError with every error found."""
    problems = Problems()
    topology = read_topology(groups, hostvars, problems)
    trays = list(groups.get(ALL_GROUP, []))
    settings = read_settings(topology, trays, hostvars, problems)
    if settings is None:
        raise PlanError(problems.errors)
    recipe = settings.recipe
    contract = _engine_contract(settings, problems)
    control = _control_plane(settings, topology, not _migration_on_worker(contract))
    resolved = [r for r in (_resolve_worker(settings, contract, topology, w, hostvars, problems) for w in topology.workers) if r is not None]
    check_pairing(
        problems,
        [(r.facts, r.view, r.par) for r in resolved if r.worker.role == "prefill"],
        [(r.facts, r.view, r.par) for r in resolved if r.worker.role == "decode"],
    )
    ranks = [rank for r in resolved for rank in _worker_ranks(settings, r)]
    hosts = _host_plans(settings, topology, trays, control, ranks)
    _check_ports(problems, hosts)
    if problems.errors:
        raise PlanError(problems.errors)
    workers = [_worker_plan(settings, r) for r in resolved]
    return {
        "version": PLAN_VERSION,
        "recipe": {"name": recipe.name, "description": recipe.description, "source": recipe.source},
        "engine": settings.engine,
        "engine_versions": recipe.engine.as_dict(),
        "served_model_name": settings.served_model_name,
        "image": settings.image,
        "gpus_per_node": settings.gpus_per_node,
        "model": {
            "hf_repo": recipe.hf_repo,
            "host_dir": settings.model_dir,
            "mount": settings.model_mount,
            "quantization": recipe.quantization,
        },
        "hardware": dict(recipe.hardware),
        "control_plane": control.control_plane if control else {},
        "frontend": control.frontend if control else {},
        "workers": workers,
        "expected_instances": {role: sum(1 for w in workers if w["role"] == role) for role in ("prefill", "decode")},
        "hosts": hosts,
        "warnings": [p.as_dict() for p in problems.warnings],
    }


def _engine_contract(settings: Settings, problems: Problems) -> Contract | None:
    engine = settings.recipe.engine
    contract = load_contract(engine.dynamo, engine.sglang)
    if contract is None:
        wanted = (catalogue_file("dynamo", engine.dynamo), catalogue_file("sglang", engine.sglang))
        missing = [str(p.relative_to(p.parents[2])) for p in wanted if not p.is_file()]
        problems.error(
            "E-ENGINE-NO-CATALOGUE",
            f"recipe {settings.recipe.name}",
            "engine",
            f"the recipe pins Dynamo {engine.dynamo} / SGLang {engine.sglang}, whose argument catalogue is not in this collection ({', '.join(missing)})",
            "pin a catalogued pair (engines/catalogue/), or generate one: add the pair's requirements and run python scripts/engines.py catalogue",
        )
    return contract


@dataclass(frozen=True)
class _Control:
    """The head tray's etcd, NATS and frontend."""

    host: str
    control_plane: ControlPlane
    frontend: Frontend
    containers: tuple[ContainerSpec, ...]


def _control_plane(settings: Settings, topology: Topology, frontend_migration: bool) -> _Control | None:
    if not topology.head or topology.head not in topology.addresses:
        return None  # its error is already reported
    head_ip = topology.addresses[topology.head]
    host = _url_host(head_ip)
    control_plane: ControlPlane = {
        "host": topology.head,
        "address": head_ip,
        "etcd_endpoints": f"http://{host}:{settings.etcd_port}",
        "nats_server": f"nats://{host}:{settings.nats_port}",
        "etcd_port": settings.etcd_port,
        "nats_port": settings.nats_port,
        "nats_monitor_port": settings.nats_monitor_port,
        "etcd_health_url": f"http://{host}:{settings.etcd_port}/health",
        "nats_health_url": f"http://{host}:{settings.nats_monitor_port}/healthz",
    }
    frontend: Frontend = {"host": topology.head, "address": head_ip, "port": settings.frontend_port, "url": f"http://{host}:{settings.frontend_port}"}
    return _Control(topology.head, control_plane, frontend, tuple(_head_containers(settings, head_ip, frontend_migration)))


def _origins(recipe_name: str, worker: str, role: str, kind: str, user: Mapping[str, Any]) -> Callable[[str], Origin]:
    """name -> Origin: the user's group variable when they set it, else the recipe's line."""

    def origin_of(name: str) -> Origin:
        if name in user:
            return Origin(f"group {worker}", f"gb200_{role}_{kind}[{name!r}]", "")
        section = "flags" if kind == "args" else "env"
        return Origin(f"recipe {recipe_name} ({role})", f"{section}.{name}", f"in gb200_{role}_{kind}: ")

    return origin_of


@dataclass(frozen=True)
class _Resolved:
    """One worker after its checks: resolved flags (node_rank still a placeholder) and env."""

    worker: Worker
    facts: WorkerFacts
    view: FlagView
    par: Parallelism
    flags: tuple[tuple[str, Any], ...]
    env: Mapping[str, str]  # with ETCD_ENDPOINTS / NATS_SERVER when the head has an address
    head_ip: str
    dist_init_addr: str
    bootstrap: int
    cache: dict[str, Any] | None


def _resolve_worker(
    settings: Settings,
    contract: Contract | None,
    topology: Topology,
    worker: Worker,
    hostvars: Mapping[str, Mapping[str, Any]],
    problems: Problems,
) -> _Resolved | None:
    """A worker's flags and env from the recipe and its group's variables, with every check."""
    recipe, role, nnodes = settings.recipe, worker.role, len(worker.hosts)
    ws = read_worker_settings(worker.name, role, worker.hosts, hostvars, problems)
    facts = WorkerFacts(worker.name, role, nnodes, settings.gpus_per_node, recipe.routed_experts, recipe.max_context_length, recipe.engine.sglang)
    check_user_input(problems, facts, ws.args, ws.env)
    head_ip = topology.addresses.get(worker.hosts[0])
    if head_ip is None:
        return None  # its address error is already reported
    dist_init_addr = f"{_url_host(head_ip)}:{settings.dist_init_port}"
    context = {
        "served_model_name": settings.served_model_name,
        "model_path": settings.model_mount,
        "role": role,
        "head_ip": head_ip,
        "dist_init_addr": dist_init_addr,
        "dist_init_port": str(settings.dist_init_port),
        "bootstrap_port": str(settings.bootstrap_port),
        "nnodes": str(nnodes),
        "gpus": str(nnodes * settings.gpus_per_node),
    }
    recipe_flags = recipe.role_flags(role)
    if settings.engine == "sglang" and settings.migration_limit and _migration_on_worker(contract):
        recipe_flags["migration-limit"] = settings.migration_limit  # a user's gb200_<role>_args value wins
    flags = fill(merge_flags(recipe_flags, ws.args), context)
    view = FlagView(dict(flags))
    env = {name: value for name, value in (recipe.role_env(role) | ws.env).items() if value is not None}
    if contract is not None:
        check_engine_flags(problems, contract, role, fill(flags, {"node_rank": "0"}), _origins(recipe.name, worker.name, role, "args", ws.args))
        check_engine_env(problems, contract, env, _origins(recipe.name, worker.name, role, "env", ws.env))
    for name in sorted(set(settings.secret_env) & (set(env) | {"ETCD_ENDPOINTS", "NATS_SERVER"})):
        problems.error(
            "E-SECRET-ENV-CLASH",
            facts.where,
            f"gb200_secret_env[{name!r}]",
            f"{name} is also set as plain environment of this worker (by the recipe, {facts.env_var} or the plan)",
            f"keep one: remove it from gb200_secret_env, or null it in {facts.env_var}",
        )
    par = check_parallelism(problems, facts, view)
    if par is None:
        return None
    check_moe(problems, facts, view, env, par)
    served = view.text("served-model-name") or settings.served_model_name
    check_sizes(problems, facts, view, served)
    check_env(problems, facts, view, env)
    if served != settings.served_model_name:
        problems.error(
            "E-SERVED-DIFFERS",
            facts.where,
            f"{facts.args_var}['served-model-name']",
            f"serves {served!r} but the deployment serves {settings.served_model_name!r}",
            "set gb200_served_model_name once instead of per worker",
        )
    try:
        bootstrap = int(view.text("disaggregation-bootstrap-port") or settings.bootstrap_port)
    except ValueError:
        bootstrap = settings.bootstrap_port
        problems.error("E-BAD-FLAG-VALUE", facts.where, f"{facts.args_var}['disaggregation-bootstrap-port']", "not an integer", "give a port number")
    head = topology.head
    if head and head in topology.addresses:
        host = _url_host(topology.addresses[head])
        env = env | {"ETCD_ENDPOINTS": f"http://{host}:{settings.etcd_port}", "NATS_SERVER": f"nats://{host}:{settings.nats_port}"}
    cache = _kernel_cache(settings, contract, role, nnodes, flags)
    if cache is not None:
        env = env | cache["env"]
    return _Resolved(worker, facts, view, par, tuple(flags), env, head_ip, dist_init_addr, bootstrap, cache)


def _kernel_cache(settings: Settings, contract: Contract | None, role: str, nnodes: int, flags: Sequence[tuple[str, Any]]) -> dict[str, Any] | None:
    """The worker's kernel cache (plan/kernel_cache.py) and the SGLang-only flags its compile takes."""
    recipe = settings.recipe
    cache = kernel_cache.worker_cache(
        root=settings.kernel_cache_dir,
        role=role,
        nnodes=nnodes,
        flags=flags,
        model=recipe.hf_repo,
        image=settings.image,
        engine=recipe.engine.as_dict(),
        caches=recipe.kernel_caches,
        reads=contract.reads if contract is not None else None,
    )
    if cache is None:
        return None
    # sglang.compile_deep_gemm parses ServerArgs: the Dynamo-only flags stay out.
    options = contract.options if contract is not None else {}
    sglang_flags = [(n, v) for n, v in flags if not options.get(f"--{n}") or options[f"--{n}"].owner.startswith("SGLang")]
    cache["compile_flags"] = sglang_flags
    return cache


@dataclass(frozen=True)
class _Rank:
    """What one tray of a worker runs (nothing, for the mocker's rank > 0 without the group double)."""

    host: str
    worker: str
    role: str
    rank: int
    nnodes: int
    argv: list[str] | None
    env: dict[str, str] | None
    container: ContainerSpec | None
    note: str | None
    agent: ContainerSpec | None = None  # gb200_worker_restart's agent on this tray


def _worker_ranks(settings: Settings, r: _Resolved) -> list[_Rank]:
    recipe, worker, role = settings.recipe, r.worker, r.worker.role
    nnodes = len(worker.hosts)
    mocker = settings.engine == "mocker"
    group = _group_command(settings, nnodes)
    # One process group across trays: Docker restarting one rank alone brings back a process that
    # cannot rejoin (its peers died with the group, or still hold the old one), so a multi-tray
    # worker's containers never restart by themselves; serve/heal (and gb200_worker_restart)
    # restart the whole worker. A worker on one tray keeps gb200_restart_policy.
    restart = "no" if len(_launch_hosts(settings, worker, nnodes)) > 1 else None
    # The agents (gb200_worker_restart: on-failure) do for the whole worker what Docker cannot.
    out: list[_Rank] = []
    for rank, host in enumerate(worker.hosts):
        if mocker and rank > 0 and group is None:
            # The mocker simulates the whole multi-tray worker from its rank-0 tray.
            note = f"mocker engine: {worker.hosts[0]} (rank 0) runs all of {worker.name}"
            out.append(_Rank(host, worker.name, role, rank, nnodes, None, None, None, note))
            continue
        membership = [*group, "--rank", str(rank), "--nnodes", str(nnodes), "--addr", r.dist_init_addr] if group else []
        if mocker and rank > 0:
            argv = membership  # TEST DOUBLE: a member of rank 0's process group, nothing else
        elif mocker:
            argv = [*membership, *(["--"] if group else []), *_mocker_argv(settings, role, r.par, r.bootstrap)]
        else:
            argv = ["python3", "-m", recipe.module, *to_argv(fill(list(r.flags), {"node_rank": str(rank)}))]
        ports: list[PortUse] = []
        if rank == 0 and (not mocker or group):
            rendezvous = f"{worker.name} torch.distributed rendezvous (dist-init)"
            ports.append({"port": settings.dist_init_port, "use": rendezvous, "variable": "gb200_dist_init_port"})
            if r.par.dp_attention and not mocker:
                ports += [
                    {"port": settings.dist_init_port + i, "use": f"{worker.name} SGLang ZMQ (dist-init + {i})", "variable": "gb200_dist_init_port"}
                    for i in range(1, DP_ATTENTION_ZMQ_PORTS + 1)
                ]
        if rank == 0 and role == "prefill":
            ports.append({"port": r.bootstrap, "use": f"{worker.name} disaggregation bootstrap", "variable": "gb200_bootstrap_port"})
        container = _container(
            settings,
            name=f"{settings.container_prefix}-{worker.name}-rank{rank}",
            kind="worker",
            image=settings.image,
            command=argv,
            env=dict(r.env),
            labels={"kind": "worker", "worker": worker.name, "role": role, "rank": str(rank), "recipe": recipe.name, "engine": settings.engine},
            working_dir=None if mocker else recipe.workdir,
            gpus=True,
            tuned=True,
            volumes=[f"{settings.model_dir}:{settings.model_mount}:ro", *([r.cache["mount"]] if r.cache else []), *settings.volumes],
            ports=ports,
            secret_env=settings.secret_env,
            restart_policy=restart,
        )
        agent = _agent(settings, r, rank, container["name"])
        out.append(_Rank(host, worker.name, role, rank, nnodes, argv, dict(r.env), container, None, agent))
    return out


def _restart_key(settings: Settings, r: _Resolved) -> str | None:
    """The worker's restart record in etcd, when agents restart it (gb200_worker_restart)."""
    if settings.worker_restart["policy"] != "on-failure" or len(_launch_hosts(settings, r.worker, len(r.worker.hosts))) < 2:
        return None
    return f"/wideep/{settings.container_prefix}/workers/{r.worker.name}/restart"


def _agent(settings: Settings, r: _Resolved, rank: int, target: str) -> ContainerSpec | None:
    """The restart agent of one rank (roles/sglang_worker/files/worker_agent.py): it watches the
    rank's container and, through etcd, restarts every rank of the worker together. Only for a
    worker on several trays (one on a single tray has Docker's own gb200_restart_policy)."""
    key, etcd = _restart_key(settings, r), r.env.get("ETCD_ENDPOINTS")
    if key is None or etcd is None:
        return None
    policy = settings.worker_restart
    return _container(
        settings,
        name=f"{settings.container_prefix}-{r.worker.name}-agent",
        kind="agent",
        image=settings.image,
        command=[
            "python3",
            AGENT_SCRIPT_MOUNT,
            "--etcd",
            etcd,
            "--key",
            key,
            "--worker",
            r.worker.name,
            "--rank",
            str(rank),
            "--container",
            target,
            "--retries",
            str(policy["retries"]),
            "--backoff",
            str(policy["backoff_s"]),
            "--backoff-max",
            str(policy["backoff_max_s"]),
        ],
        env={},
        labels={"kind": "agent", "worker": r.worker.name, "rank": str(rank)},
        volumes=[f"{DOCKER_SOCKET}:{DOCKER_SOCKET}", f"{AGENT_SCRIPT}:{AGENT_SCRIPT_MOUNT}:ro"],
        ports=[],
    )


def _group_command(settings: Settings, nnodes: int) -> list[str] | None:
    """The process-group double's command when this worker's ranks run it (mocker, > 1 tray)."""
    if settings.engine != "mocker" or settings.mocker_group_command is None or nnodes < 2:
        return None
    return list(settings.mocker_group_command)


def _launch_hosts(settings: Settings, worker: Worker, nnodes: int) -> list[str]:
    """The trays that start a container for this worker: every rank, except for the mocker without
    the group double, which simulates the whole worker from rank 0."""
    if settings.engine == "mocker" and _group_command(settings, nnodes) is None:
        return [worker.hosts[0]]
    return list(worker.hosts)


def _host_plans(settings: Settings, topology: Topology, trays: Sequence[str], control: _Control | None, ranks: Sequence[_Rank]) -> dict[str, HostPlan]:
    """One plan per tray (and the head), in inventory order: what it runs and the ports it binds."""
    engine = {"sglang": settings.recipe.engine.sglang, "dynamo": settings.recipe.engine.dynamo}
    by_host = {r.host: r for r in ranks}
    hosts: dict[str, HostPlan] = {}
    for host in dict.fromkeys([*trays, *([topology.head] if topology.head else []), *by_host]):
        containers: list[ContainerSpec] = list(control.containers) if control and host == control.host else []
        groups = [HEAD_GROUP] if control and host == control.host else []
        plan: HostPlan = {
            "address": topology.addresses.get(host),
            "groups": groups,
            "worker": None,
            "role": None,
            "node_rank": None,
            "nnodes": None,
            "launch": False,
            "argv": None,
            "env": None,
            "containers": containers,
        }
        rank = by_host.get(host)
        if rank is not None:
            plan.update(
                {
                    "groups": [*groups, rank.worker],
                    "worker": rank.worker,
                    "role": rank.role,
                    "node_rank": rank.rank,
                    "nnodes": rank.nnodes,
                    "engine": engine,
                    "launch": rank.container is not None,
                    "argv": rank.argv,
                    "env": rank.env,
                    "containers": containers + [c for c in (rank.container, rank.agent) if c is not None],
                }
            )
            if rank.note:
                plan["note"] = rank.note
        plan["ports"] = [p for c in plan["containers"] for p in c["ports"]]
        hosts[host] = plan
    return hosts


def _worker_plan(settings: Settings, r: _Resolved) -> WorkerPlan:
    worker = r.worker
    return {
        "name": worker.name,
        "role": worker.role,
        "hosts": list(worker.hosts),
        "head": worker.hosts[0],
        "head_ip": r.head_ip,
        "nnodes": len(worker.hosts),
        "gpus": len(worker.hosts) * settings.gpus_per_node,
        "tp_size": r.par.tp,
        "dp_size": r.par.dp,
        "ep_size": r.par.ep,
        "dist_init_addr": r.dist_init_addr,
        "bootstrap_port": r.bootstrap,
        "launch_hosts": _launch_hosts(settings, worker, len(worker.hosts)),
        "restart": {**settings.worker_restart, "key": _restart_key(settings, r)},
        "kernel_cache": _worker_cache_plan(r),
    }


def _worker_cache_plan(r: _Resolved) -> dict[str, Any] | None:
    if r.cache is None:
        return None
    plan = {k: v for k, v in r.cache.items() if k != "compile_flags"}
    flags = list(r.cache["compile_flags"])
    plan["compile_argv"] = {str(rank): to_argv(fill(flags, {"node_rank": str(rank)})) for rank in range(len(r.worker.hosts))}
    return plan
