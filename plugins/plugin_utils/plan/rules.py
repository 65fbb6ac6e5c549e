# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Rules that SGLang, Dynamo or the hardware enforce late (or by hanging), checked up front.

Sources: docs/gb200-facts.md §5 (numbered "rule N" below) and §6; rules that hold only for some
releases are keyed on the pinned version (docs/engine-contract.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.contract import version_key
from .flags import ALIASES, FlagView
from .problems import Problems

# Flags the plan computes from the inventory; a user value would break rank/head agreement.
OWNED_FLAGS = {
    "disaggregation-mode": "the worker's parent group (prefill or decode)",
    "dist-init-addr": "the rank-0 tray's address and gb200_dist_init_port",
    "nnodes": "the number of trays in the worker group",
    "node-rank": "the tray's position in its worker group",
}
OWNED_ENV = {
    "ETCD_ENDPOINTS": "the dynamo_head tray's address and gb200_etcd_port",
    "NATS_SERVER": "the dynamo_head tray's address and gb200_nats_port",
}
# Rules that hold only for some SGLang releases, keyed on the pinned version (sources: the
# wheels' server_args.py; docs/engine-contract.md has the table).
ROUND_ROBIN_REQUIRED_BELOW = "0.5.8"  # _handle_disaggregation asserts prefill_round_robin_balance
MOE_DENSE_TP_IS_TP_FROM = "0.5.13"  # moe_dense_tp_size may equal tp_size from here on
MOONCAKE_ONLY_ENV = ("MC_FORCE_MNNVL", "MC_TE_METRIC")
MAX_DEEPEP_DISPATCH = 1024


@dataclass(frozen=True)
class WorkerFacts:
    """What the rules need to know about one worker besides its flags."""

    name: str
    role: str
    nnodes: int
    gpus_per_node: int
    routed_experts: int
    max_context_length: int
    sglang: str  # the pinned SGLang version: some rules hold only for some releases

    def sglang_below(self, version: str) -> bool:
        return version_key(self.sglang) < version_key(version)

    @property
    def where(self) -> str:
        return f"group {self.name}"

    @property
    def args_var(self) -> str:
        return f"gb200_{self.role}_args"

    @property
    def env_var(self) -> str:
        return f"gb200_{self.role}_env"


@dataclass(frozen=True)
class Parallelism:
    tp: int
    dp: int
    ep: int
    dp_attention: bool
    deepep: bool


def valid_ep_sizes(experts: int, gpus_per_node: int, limit: int = 320) -> list[int]:
    return [n for n in range(gpus_per_node, limit + 1, gpus_per_node) if experts % n == 0]


def _int_flag(problems: Problems, w: WorkerFacts, f: FlagView, name: str) -> int | None:
    try:
        return f.integer(name)
    except ValueError:
        problems.error(
            "E-BAD-FLAG-VALUE",
            w.where,
            f"{w.args_var}[{f.name_of(name)!r}]",
            f"{f.raw(name)!r} is not an integer",
            "give a whole number",
        )
        return None


def check_user_input(problems: Problems, w: WorkerFacts, args: dict[str, Any], env: dict[str, Any]) -> None:
    for flag in args:
        if flag in OWNED_FLAGS:
            problems.error(
                "E-OWNED-FLAG",
                w.where,
                f"{w.args_var}[{flag!r}]",
                f"--{flag} is computed from the inventory ({OWNED_FLAGS[flag]})",
                "remove it from the args; change the inventory instead",
            )
    for name in env:
        if name in OWNED_ENV:
            problems.error(
                "E-OWNED-ENV",
                w.where,
                f"{w.env_var}[{name!r}]",
                f"{name} is computed from the inventory ({OWNED_ENV[name]})",
                "remove it; set gb200_etcd_port / gb200_nats_port or move dynamo_head instead",
            )


def check_parallelism(problems: Problems, w: WorkerFacts, f: FlagView) -> Parallelism | None:
    """Rules 1-6: sizes against trays and GPUs, dp-attention, DeepEP, experts vs EP."""
    for canonical in ("tp-size", "dp-size", "ep-size", "pp-size"):
        spelled = [n for n in ALIASES[canonical] if n in f.flags]
        if len(spelled) > 1:
            problems.error(
                "E-FLAG-ALIAS",
                w.where,
                w.args_var,
                f"both --{spelled[0]} and --{spelled[1]} are set",
                f"keep one of them (null removes the recipe's --{spelled[0]})",
            )
    tp = _int_flag(problems, w, f, "tp-size")
    dp = _int_flag(problems, w, f, "dp-size")
    ep = _int_flag(problems, w, f, "ep-size")
    pp = _int_flag(problems, w, f, "pp-size")
    tp = 1 if tp is None else tp
    dp = 1 if dp is None else dp
    pp = 1 if pp is None else pp
    if min(tp, dp, pp) < 1 or (ep is not None and ep < 1):
        problems.error("E-BAD-FLAG-VALUE", w.where, w.args_var, "parallel sizes must be >= 1", "use positive sizes")
        return None
    gpus = w.nnodes * w.gpus_per_node
    if (tp * pp) % w.nnodes:
        problems.error(
            "E-TP-NODES",
            w.where,
            f"{w.args_var}['tp-size']",
            f"tp-size x pp-size = {tp * pp} is not a multiple of the worker's {w.nnodes} trays (SGLang refuses it)",
            f"use tp-size {gpus} (trays x gb200_gpus_per_node), or change the number of trays in {w.name}",
        )
    elif tp * pp // w.nnodes > w.gpus_per_node:
        problems.error(
            "E-TP-GPUS",
            w.where,
            f"{w.args_var}['tp-size']",
            f"tp-size {tp} needs {tp * pp // w.nnodes} GPUs per tray but a tray has {w.gpus_per_node} (gb200_gpus_per_node)",
            f"use tp-size {gpus}, or add trays to {w.name}",
        )
    elif tp * pp < gpus:
        problems.warn(
            "W-IDLE-GPUS",
            w.where,
            f"{w.args_var}['tp-size']",
            f"tp-size {tp} uses {tp * pp} of the worker's {gpus} GPUs",
            f"use tp-size {gpus} (every published recipe uses trays x GPUs per tray)",
        )
    dp_attention = f.present("enable-dp-attention")
    if dp > 1 and w.nnodes > 1 and not dp_attention:
        problems.error(
            "E-DP-ATTENTION",
            w.where,
            f"{w.args_var}['enable-dp-attention']",
            f"dp-size {dp} across {w.nnodes} trays requires --enable-dp-attention",
            "set 'enable-dp-attention': true, or dp-size 1",
        )
    if dp_attention and tp % dp:
        problems.error(
            "E-TP-DP",
            w.where,
            f"{w.args_var}['dp-size']",
            f"with dp-attention tp-size ({tp}) must be a multiple of dp-size ({dp})",
            f"use dp-size {tp} (recipes use tp = dp = trays x GPUs)",
        )
    if f.present("enable-dp-lm-head") and not dp_attention:
        problems.error(
            "E-DP-LM-HEAD",
            w.where,
            f"{w.args_var}['enable-dp-lm-head']",
            "--enable-dp-lm-head requires --enable-dp-attention",
            "set 'enable-dp-attention': true or remove enable-dp-lm-head (null)",
        )
    dense = _int_flag(problems, w, f, "moe-dense-tp-size")
    allowed = (1,) if w.sglang_below(MOE_DENSE_TP_IS_TP_FROM) else (1, tp)
    if dense is not None and dense not in allowed:
        problems.error(
            "E-MOE-DENSE-TP",
            w.where,
            f"{w.args_var}['moe-dense-tp-size']",
            f"moe-dense-tp-size {dense}: SGLang {w.sglang} accepts only {' or '.join(map(str, allowed))} (or unset)",
            "set it to 1 or null",
        )
    deepep = f.text("moe-a2a-backend") == "deepep"
    if deepep and ep is not None and ep != tp:
        problems.error(
            "E-DEEPEP-EP",
            w.where,
            f"{w.args_var}['ep-size']",
            f"--moe-a2a-backend deepep forces ep-size = tp-size ({tp}), ep-size is {ep}",
            f"set ep-size {tp} or remove it",
        )
    ep_eff = ep if ep is not None else (tp if deepep else 1)
    redundant = _int_flag(problems, w, f, "ep-num-redundant-experts") or 0
    physical = w.routed_experts + redundant
    if ep_eff > 1 and physical % ep_eff:
        sizes = ", ".join(str(n) for n in valid_ep_sizes(physical, w.gpus_per_node)[:12])
        problems.error(
            "E-EXPERTS-EP",
            w.where,
            f"{w.args_var}['ep-num-redundant-experts']",
            f"{w.routed_experts} routed + {redundant} redundant experts = {physical} is not divisible by the EP size {ep_eff}",
            f"use a worker size whose EP divides {physical} (EP sizes that do: {sizes}), "
            f"or change ep-num-redundant-experts so that ({w.routed_experts} + R) % {ep_eff} == 0",
        )
    if f.present("enable-eplb") and ep_eff <= 1:
        problems.error("E-EPLB-EP", w.where, f"{w.args_var}['enable-eplb']", "--enable-eplb needs ep-size > 1", "remove enable-eplb or use expert parallelism")
    return Parallelism(tp=tp, dp=dp, ep=ep_eff, dp_attention=dp_attention, deepep=deepep)


def check_moe(problems: Problems, w: WorkerFacts, f: FlagView, env: dict[str, str], par: Parallelism) -> None:
    """Rules 5, 7, 10, 11: DeepEP modes and dispatch tokens, MoE runner vs quantization."""
    mode = f.text("deepep-mode") or "auto"
    if par.deepep and w.role == "decode" and mode == "normal":
        problems.warn(
            "W-DEEPEP-NORMAL-DECODE",
            w.where,
            f"{w.args_var}['deepep-mode']",
            "deepep-mode normal disables CUDA graphs, which decode needs for speed",
            "use low_latency on decode (normal on prefill)",
        )
    tokens_text = env.get("SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK")
    if tokens_text is not None and par.deepep and mode in ("low_latency", "auto"):
        try:
            tokens = int(tokens_text)
        except ValueError:
            tokens = -1
            problems.error(
                "E-BAD-ENV-VALUE",
                w.where,
                f"{w.env_var}['SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK']",
                f"{tokens_text!r} is not an integer",
                "give a whole number <= 1024",
            )
        if tokens > MAX_DEEPEP_DISPATCH:
            problems.error(
                "E-DEEPEP-TOKENS",
                w.where,
                f"{w.env_var}['SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK']",
                f"{tokens} > {MAX_DEEPEP_DISPATCH}: the DeepEP low-latency dispatcher asserts at most {MAX_DEEPEP_DISPATCH} (deepep-mode {mode})",
                f"use <= {MAX_DEEPEP_DISPATCH}, or deepep-mode normal on prefill",
            )
        graph_bs = _int_flag(problems, w, f, "cuda-graph-max-bs")
        if graph_bs is not None and tokens > 0 and graph_bs > tokens:
            problems.warn(
                "W-GRAPH-BS-TOKENS",
                w.where,
                f"{w.args_var}['cuda-graph-max-bs']",
                f"cuda-graph-max-bs {graph_bs} exceeds SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK {tokens}",
                "keep cuda-graph-max-bs <= the dispatch tokens (the recipes pair 768/768, 384/384)",
            )
    runner = f.text("moe-runner-backend")
    quant = f.text("quantization")
    if runner == "flashinfer_cutlass":
        if quant not in (None, "modelopt_fp4", "modelopt_fp8"):
            problems.error(
                "E-RUNNER-QUANT",
                w.where,
                f"{w.args_var}['moe-runner-backend']",
                f"flashinfer_cutlass needs quantization modelopt_fp4, modelopt_fp8 or none, not {quant}",
                "choose another moe-runner-backend or quantization",
            )
        if par.ep not in (1, par.tp):
            problems.error(
                "E-RUNNER-EP",
                w.where,
                f"{w.args_var}['ep-size']",
                f"flashinfer_cutlass needs ep-size 1 or tp-size ({par.tp}), not {par.ep}",
                f"set ep-size {par.tp}",
            )
    if runner == "flashinfer_trtllm" and quant not in ("modelopt_fp4", "modelopt_fp8", "fp8"):
        problems.error(
            "E-RUNNER-QUANT",
            w.where,
            f"{w.args_var}['moe-runner-backend']",
            f"flashinfer_trtllm needs quantization modelopt_fp4, modelopt_fp8 or fp8, not {quant}",
            "choose another moe-runner-backend or quantization",
        )
    if quant == "modelopt_fp4" and par.deepep:
        if w.role == "prefill":
            problems.error(
                "E-NVFP4-DEEPEP-PREFILL",
                w.where,
                f"{w.args_var}['moe-a2a-backend']",
                "DeepEP on an NVFP4 prefill crashes (normal-mode dispatch on extend batches)",
                "remove moe-a2a-backend (null) and use moe-runner-backend flashinfer_cutlass on prefill",
            )
        elif runner != "flashinfer_cutedsl" or mode != "low_latency":
            problems.error(
                "E-NVFP4-DEEPEP-RUNNER",
                w.where,
                f"{w.args_var}['moe-runner-backend']",
                "the only DeepEP NVFP4 path is moe-runner-backend flashinfer_cutedsl with deepep-mode low_latency",
                "set both, or drop DeepEP",
            )
    if runner == "flashinfer_cutedsl" and par.ep > 0:
        redundant = _int_flag(problems, w, f, "ep-num-redundant-experts") or 0
        per_gpu = (w.routed_experts + redundant) / par.ep
        if per_gpu >= 8:
            problems.warn(
                "W-CUTEDSL-EXPERTS",
                w.where,
                f"{w.args_var}['ep-size']",
                f"flashinfer_cutedsl is tuned for fewer than 8 experts per GPU; EP {par.ep} gives {per_gpu:g}",
                "use EP >= 48 for 288 experts (12 decode trays), as the published recipe does",
            )


def check_sizes(problems: Problems, w: WorkerFacts, f: FlagView, served: str) -> None:
    """Rule 12: context length against the model, token budgets, served name."""
    context = _int_flag(problems, w, f, "context-length")
    if context is not None and context > w.max_context_length:
        problems.error(
            "E-CONTEXT-LENGTH",
            w.where,
            f"{w.args_var}['context-length']",
            f"{context} exceeds the model's {w.max_context_length} positions",
            f"use <= {w.max_context_length}",
        )
    total = _int_flag(problems, w, f, "max-total-tokens")
    if context is not None and total is not None and total < context:
        problems.warn(
            "W-TOTAL-TOKENS",
            w.where,
            f"{w.args_var}['max-total-tokens']",
            f"max-total-tokens {total} is below context-length {context}: one long request cannot fit",
            "raise max-total-tokens or lower context-length",
        )
    try:
        fraction = f.number("mem-fraction-static")
    except ValueError:
        fraction = None
        problems.error("E-BAD-FLAG-VALUE", w.where, f"{w.args_var}['mem-fraction-static']", "not a number", "use e.g. 0.82")
    if fraction is not None and not 0 < fraction < 1:
        problems.error(
            "E-MEM-FRACTION",
            w.where,
            f"{w.args_var}['mem-fraction-static']",
            f"{fraction} is not a fraction in (0, 1)",
            "use 0.75-0.84 as the recipes do",
        )
    if ":" in served:
        problems.error(
            "E-SERVED-NAME",
            w.where,
            "gb200_served_model_name",
            f"{served!r} contains ':', which SGLang refuses in --served-model-name",
            "remove the ':'",
        )
    if w.role == "decode":
        for flag in ("disaggregation-decode-tp", "disaggregation-decode-dp"):
            if f.present(flag):
                problems.error(
                    "E-DECODE-FLAG",
                    w.where,
                    f"{w.args_var}[{flag!r}]",
                    f"--{flag} must not be set on a decode worker",
                    "set it on the prefill worker or remove it",
                )


def check_env(problems: Problems, w: WorkerFacts, f: FlagView, env: dict[str, str]) -> None:
    """Mooncake's own variables (MC_*) where nothing of Mooncake runs: neither the mooncake transfer
    backend nor SGLang's Mooncake NVLink KV allocator (SGLANG_MOONCAKE_CUSTOM_MEM_POOL, which every
    catalogued release reads whatever the backend: mem_cache/memory_pool.py, mem_cache/utils.py).
    The engine catalogue checks the engines' own variables."""
    backend = f.text("disaggregation-transfer-backend") or "mooncake"
    pool = env.get("SGLANG_MOONCAKE_CUSTOM_MEM_POOL", "").lower() not in ("", "0", "false", "none")
    if backend != "mooncake" and not pool:
        inert = [n for n in MOONCAKE_ONLY_ENV if n in env]
        if inert:
            problems.warn(
                "W-ENV-MOONCAKE",
                w.where,
                w.env_var,
                f"{', '.join(inert)} only act where Mooncake runs (the mooncake transfer backend or SGLANG_MOONCAKE_CUSTOM_MEM_POOL); "
                f"this worker uses {backend} and no Mooncake allocator",
                "remove them (null), or switch disaggregation-transfer-backend to mooncake",
            )


def check_pairing(
    problems: Problems, prefill: list[tuple[WorkerFacts, FlagView, Parallelism]], decode: list[tuple[WorkerFacts, FlagView, Parallelism]]
) -> None:
    """Rule 9: before SGLang 0.5.8 a decode with dp > 1 needs round-robin pairing on both sides
    (later releases route prefill by the bootstrap room and dropped the flag)."""
    decode = [(w, f, par) for w, f, par in decode if w.sglang_below(ROUND_ROBIN_REQUIRED_BELOW)]
    prefill = [(w, f, par) for w, f, par in prefill if w.sglang_below(ROUND_ROBIN_REQUIRED_BELOW)]
    if not any(par.dp > 1 for _facts, _flags, par in decode):
        return
    for w, f, par in decode:
        if par.dp > 1 and not f.present("prefill-round-robin-balance"):
            problems.error(
                "E-ROUND-ROBIN-DECODE",
                w.where,
                f"{w.args_var}['prefill-round-robin-balance']",
                f"a decode with dp-size {par.dp} requires --prefill-round-robin-balance (SGLang {w.sglang} asserts it)",
                "set 'prefill-round-robin-balance': true",
            )
    for w, f, _par in prefill:
        if f.text("load-balance-method") != "round_robin":
            problems.error(
                "E-ROUND-ROBIN-PREFILL",
                w.where,
                f"{w.args_var}['load-balance-method']",
                "a decode with dp > 1 pairs with prefill ranks round-robin, so the prefill must use "
                f"--load-balance-method round_robin (has {f.text('load-balance-method')})",
                "set 'load-balance-method': round_robin",
            )
