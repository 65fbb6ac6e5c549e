"""Every validation rule: one table row per problem, with where/variable/fix checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from inventory_builder import build, set_var

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import PlanError

Groups = dict[str, list[str]]
HostVars = dict[str, dict[str, Any]]
Mutation = Callable[[Groups, HostVars], None]


def prefill_args(**args: Any) -> Mutation:
    return lambda g, h: set_var(h, g["prefill_0"], "gb200_prefill_args", {k.replace("_", "-"): v for k, v in args.items()})


def decode_args(**args: Any) -> Mutation:
    return lambda g, h: set_var(h, g["decode_0"], "gb200_decode_args", {k.replace("_", "-"): v for k, v in args.items()})


def decode_env(**env: Any) -> Mutation:
    return lambda g, h: set_var(h, g["decode_0"], "gb200_decode_env", env)


def everyone(name: str, value: Any) -> Mutation:
    return lambda g, h: set_var(h, g["gb200"], name, value)


def _move_host(g: Groups, _h: HostVars) -> None:
    g["decode_0"].append("p0-1")
    g["decode"].append("p0-1")


def _stray_in_prefill(g: Groups, h: HostVars) -> None:
    h["stray"] = {"ansible_host": "10.9.9.9"}
    g["gb200"].append("stray")
    g["prefill"].append("stray")


def _worker_outside_gb200(g: Groups, h: HostVars) -> None:
    h["x"] = {"ansible_host": "10.9.9.8"}
    g["decode_0"].append("x")
    g["decode"].append("x")


def _not_a_child(g: Groups, h: HostVars) -> None:
    h["y"] = {"ansible_host": "10.9.9.7"}
    g["gb200"].append("y")
    g["prefill_9"] = ["y"]


SEED = {"gb200_recipe": "dsr1-fp8-wideep"}  # the seed's engine (SGLang 0.5.3.post2), where some rules still hold

ERRORS: list[tuple[str, dict[str, Any], Mutation | None, str, str, str]] = [
    # id, build kwargs, mutation, code, where contains, variable contains
    ("no trays", {}, lambda g, _h: g.update(gb200=[]), "E-NO-TRAYS", "group gb200", "inventory"),
    ("no head", {}, lambda g, _h: g.update(dynamo_head=[]), "E-HEAD-COUNT", "dynamo_head", "inventory"),
    ("two heads", {}, lambda g, _h: g.update(dynamo_head=["head", "p0-0"]), "E-HEAD-COUNT", "dynamo_head", "inventory"),
    ("no decode", {"decode": ()}, None, "E-NO-WORKERS", "group decode", "inventory"),
    ("empty worker", {}, lambda g, _h: g.update(prefill_1=[]), "E-EMPTY-WORKER", "group prefill_1", "inventory"),
    ("host in two workers", {}, _move_host, "E-HOST-TWO-WORKERS", "host p0-1", "inventory"),
    ("host only in prefill", {}, _stray_in_prefill, "E-HOST-NO-WORKER", "host stray", "inventory"),
    ("worker host not a tray", {}, _worker_outside_gb200, "E-WORKER-NOT-TRAY", "host x", "inventory"),
    ("worker not under prefill", {}, _not_a_child, "E-WORKER-PARENT", "group prefill_9", "inventory"),
    ("bad ip", {}, lambda _g, h: h["d0-1"].update(ansible_host="tray-d1.example"), "E-BAD-IP", "host d0-1", "ansible_host"),
    ("bad node ip", {}, lambda _g, h: h["d0-1"].update(gb200_node_ip="10.0.0.300"), "E-BAD-IP", "host d0-1", "gb200_node_ip"),
    ("duplicate ip", {}, lambda _g, h: h["d0-1"].update(ansible_host=h["d0-0"]["ansible_host"]), "E-DUPLICATE-IP", "host d0-1", "ansible_host"),
    ("interface without facts", {"gb200_head_interface": "ib0"}, None, "E-NO-INTERFACE", "host head", "gb200_head_interface"),
    ("unknown recipe", {"gb200_recipe": "dsr1-fp16"}, None, "E-UNKNOWN-RECIPE", "inventory", "gb200_recipe"),
    ("bad engine", {"gb200_engine": "vllm"}, None, "E-BAD-ENGINE", "inventory", "gb200_engine"),
    ("gpus not int", {"gb200_gpus_per_node": "four"}, None, "E-BAD-TYPE", "inventory", "gb200_gpus_per_node"),
    ("port out of range", {"gb200_frontend_port": 70000}, None, "E-BAD-TYPE", "inventory", "gb200_frontend_port"),
    ("bad ulimit", {"gb200_container_ulimits": ["memlock unlimited"]}, None, "E-BAD-ULIMIT", "inventory", "gb200_container_ulimits"),
    ("bad volume", {"gb200_container_volumes": ["cache:/c"]}, None, "E-BAD-VOLUME", "inventory", "gb200_container_volumes"),
    ("relative model dir", {"gb200_model_dir": "models/r1"}, None, "E-BAD-PATH", "inventory", "gb200_model_dir"),
    ("bad gpus", {"gb200_container_gpus": "every"}, None, "E-BAD-GPUS", "inventory", "gb200_container_gpus"),
    ("bad restart policy", {"gb200_restart_policy": "sometimes"}, None, "E-BAD-RESTART", "inventory", "gb200_restart_policy"),
    (
        "group command not a list",
        {"gb200_engine": "mocker", "gb200_mocker_group_command": "python3 group_double.py"},
        None,
        "E-BAD-TYPE",
        "inventory",
        "gb200_mocker_group_command",
    ),
    ("group command empty", {"gb200_engine": "mocker", "gb200_mocker_group_command": []}, None, "E-BAD-TYPE", "inventory", "gb200_mocker_group_command"),
    (
        "group command with sglang",
        {"gb200_mocker_group_command": ["python3", "/opt/wideep-emu/group_double.py"]},
        None,
        "E-GROUP-COMMAND-ENGINE",
        "inventory",
        "gb200_mocker_group_command",
    ),
    ("recipe differs per host", {}, lambda _g, h: h["d0-1"].update(gb200_recipe="dsr1-nvfp4-wideep"), "E-VAR-DIFFERS", "gb200", "gb200_recipe"),
    (
        "args differ in a worker",
        {},
        lambda _g, h: h["p0-1"].update(gb200_prefill_args={"log-level": "info"}),
        "E-VAR-DIFFERS",
        "group prefill_0",
        "gb200_prefill_args",
    ),
    (
        "args not a dict",
        {},
        lambda g, h: set_var(h, g["prefill_0"], "gb200_prefill_args", ["--tp-size", "8"]),
        "E-BAD-TYPE",
        "group prefill_0",
        "gb200_prefill_args",
    ),
    ("flag with dashes", {}, prefill_args(**{"--tp-size": 8}), "E-BAD-FLAG-NAME", "group prefill_0", "gb200_prefill_args['--tp-size']"),
    ("flag value a dict", {}, prefill_args(log_level={"a": 1}), "E-BAD-FLAG-VALUE", "group prefill_0", "log-level"),
    ("env bool", {}, decode_env(SGLANG_MOONCAKE_CUSTOM_MEM_POOL=True), "E-BAD-ENV-VALUE", "group decode_0", "SGLANG_MOONCAKE_CUSTOM_MEM_POOL"),
    ("env bad name", {}, decode_env(**{"1BAD": "x"}), "E-BAD-ENV-NAME", "group decode_0", "1BAD"),
    ("owned flag node-rank", {}, prefill_args(node_rank=1), "E-OWNED-FLAG", "group prefill_0", "node-rank"),
    ("owned flag dist-init-addr", {}, decode_args(dist_init_addr="1.2.3.4:1"), "E-OWNED-FLAG", "group decode_0", "dist-init-addr"),
    ("owned env", {}, decode_env(ETCD_ENDPOINTS="http://x:2379"), "E-OWNED-ENV", "group decode_0", "ETCD_ENDPOINTS"),
    ("removed flag", {}, prefill_args(enable_deepep_moe=True), "E-ENGINE-UNKNOWN-FLAG", "group prefill_0", "enable-deepep-moe"),
    ("tp not multiple of nodes", {}, prefill_args(tp_size=5, dp_size=5), "E-TP-NODES", "group prefill_0", "tp-size"),
    ("tp over the gpus", {}, prefill_args(tp_size=16, dp_size=16), "E-TP-GPUS", "group prefill_0", "tp-size"),
    ("tp not an int", {}, prefill_args(tp_size="eight"), "E-BAD-FLAG-VALUE", "group prefill_0", "tp-size"),
    ("both tp spellings", {}, prefill_args(tensor_parallel_size=8), "E-FLAG-ALIAS", "group prefill_0", "gb200_prefill_args"),
    ("dp without dp-attention", {}, prefill_args(enable_dp_attention=None, enable_dp_lm_head=None), "E-DP-ATTENTION", "group prefill_0", "enable-dp-attention"),
    ("tp not multiple of dp", {}, prefill_args(dp_size=3), "E-TP-DP", "group prefill_0", "dp-size"),
    (
        "dp-lm-head without dp-attention",
        {"prefill": (1,)},
        prefill_args(enable_dp_attention=None, dp_size=1),
        "E-DP-LM-HEAD",
        "group prefill_0",
        "enable-dp-lm-head",
    ),
    ("dense tp", {}, decode_args(moe_dense_tp_size=2), "E-MOE-DENSE-TP", "group decode_0", "moe-dense-tp-size"),
    ("deepep ep != tp", {}, decode_args(ep_size=4), "E-DEEPEP-EP", "group decode_0", "ep-size"),
    ("experts vs ep (14 trays)", {"decode": (14,)}, None, "E-EXPERTS-EP", "group decode_0", "ep-num-redundant-experts"),
    ("experts vs ep (redundant 30)", {}, decode_args(ep_num_redundant_experts=30), "E-EXPERTS-EP", "group decode_0", "ep-num-redundant-experts"),
    (
        "eplb without ep",
        {"prefill": (1,)},
        prefill_args(moe_a2a_backend=None, enable_eplb=True, ep_num_redundant_experts=None, ep_size=None),
        "E-EPLB-EP",
        "group prefill_0",
        "enable-eplb",
    ),
    (
        "dispatch tokens > 1024",
        {},
        decode_env(SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK="2048"),
        "E-DEEPEP-TOKENS",
        "group decode_0",
        "SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK",
    ),
    (
        "dispatch tokens not int",
        {},
        decode_env(SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK="many"),
        "E-BAD-ENV-VALUE",
        "group decode_0",
        "SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK",
    ),
    # Keyed on the release: only SGLang < 0.5.8 (the seed's engine) asserts the pairing.
    ("decode without round robin", SEED, decode_args(prefill_round_robin_balance=None), "E-ROUND-ROBIN-DECODE", "group decode_0", "prefill-round-robin"),
    ("prefill without round robin", SEED, prefill_args(load_balance_method="total_requests"), "E-ROUND-ROBIN-PREFILL", "group prefill_0", "load-balance"),
    (
        "cutlass runner with fp8",
        {},
        prefill_args(moe_runner_backend="flashinfer_cutlass", quantization="fp8"),
        "E-RUNNER-QUANT",
        "group prefill_0",
        "moe-runner-backend",
    ),
    ("trtllm runner without fp quant", {}, prefill_args(moe_runner_backend="flashinfer_trtllm"), "E-RUNNER-QUANT", "group prefill_0", "moe-runner-backend"),
    (
        "cutlass runner ep",
        {"prefill": (1,)},
        prefill_args(moe_runner_backend="flashinfer_cutlass", moe_a2a_backend=None, ep_size=2, ep_num_redundant_experts=None),
        "E-RUNNER-EP",
        "group prefill_0",
        "ep-size",
    ),
    (
        "nvfp4 deepep prefill",
        {"gb200_recipe": "dsr1-nvfp4-wideep", "decode": (12,)},
        prefill_args(moe_a2a_backend="deepep"),
        "E-NVFP4-DEEPEP-PREFILL",
        "group prefill_0",
        "moe-a2a-backend",
    ),
    (
        "nvfp4 deepep wrong runner",
        {"gb200_recipe": "dsr1-nvfp4-wideep", "decode": (12,)},
        decode_args(moe_runner_backend="flashinfer_trtllm"),
        "E-NVFP4-DEEPEP-RUNNER",
        "group decode_0",
        "moe-runner-backend",
    ),
    ("context too long", {}, decode_args(context_length=200000), "E-CONTEXT-LENGTH", "group decode_0", "context-length"),
    ("mem fraction", {}, decode_args(mem_fraction_static=1.5), "E-MEM-FRACTION", "group decode_0", "mem-fraction-static"),
    ("served name colon", {"gb200_served_model_name": "r1:latest"}, None, "E-SERVED-NAME", "group prefill_0", "gb200_served_model_name"),
    ("served name differs", {}, decode_args(served_model_name="other/model"), "E-SERVED-DIFFERS", "group decode_0", "served-model-name"),
    ("decode-tp on decode", {}, decode_args(disaggregation_decode_tp=8), "E-DECODE-FLAG", "group decode_0", "disaggregation-decode-tp"),
    ("frontend port = bootstrap", {"head_separate": False, "gb200_frontend_port": 30001}, None, "E-PORT-COLLISION", "host p0-0", "gb200_"),
    ("nats port = dist-init zmq", {"head_separate": False, "gb200_nats_port": 29503}, None, "E-PORT-COLLISION", "host p0-0", "gb200_"),
    ("etcd port = frontend", {"gb200_etcd_port": 8000}, None, "E-PORT-COLLISION", "host head", "gb200_"),
]


@pytest.mark.parametrize(
    ("build_kwargs", "mutate", "code", "where", "variable"),
    [row[1:] for row in ERRORS],
    ids=[row[0] for row in ERRORS],
)
def test_each_error(build_kwargs: dict[str, Any], mutate: Mutation | None, code: str, where: str, variable: str) -> None:
    groups, hostvars = build(**build_kwargs)
    if mutate:
        mutate(groups, hostvars)
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    matching = [p for p in caught.value.problems if p.code == code]
    assert matching, f"expected {code}, got {[p.render() for p in caught.value.problems]}"
    problem = matching[0]
    assert where in problem.where
    assert variable in problem.variable
    assert problem.fix and problem.message
    assert problem.render() in str(caught.value)


def test_all_problems_are_reported_together() -> None:
    groups, hostvars = build(gb200_engine="vllm", gb200_frontend_port=0)
    hostvars["d0-1"]["ansible_host"] = "nope"
    set_var(hostvars, groups["prefill_0"], "gb200_prefill_args", {"tp-size": 7, "node-rank": 3})
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    codes = {p.code for p in caught.value.problems}
    assert {"E-BAD-ENGINE", "E-BAD-TYPE", "E-BAD-IP", "E-TP-NODES", "E-OWNED-FLAG"} <= codes
    assert str(caught.value).count("Fix:") == len(caught.value.problems)


WARNINGS: list[tuple[str, dict[str, Any], Mutation | None, str, str]] = [
    ("idle gpus", {}, prefill_args(tp_size=4, dp_size=4, ep_size=4), "W-IDLE-GPUS", "group prefill_0"),
    ("graph bs over tokens", {}, decode_args(cuda_graph_max_bs_decode=1024), "W-GRAPH-BS-TOKENS", "group decode_0"),
    ("graph bs over tokens, seed era", {"gb200_recipe": "dsr1-fp8-wideep"}, decode_args(cuda_graph_max_bs=1024), "W-GRAPH-BS-TOKENS", "group decode_0"),
    ("normal deepep on decode", {}, decode_args(deepep_mode="normal", cuda_graph_max_bs_decode=None), "W-DEEPEP-NORMAL-DECODE", "group decode_0"),
    ("total tokens below context", {}, prefill_args(max_total_tokens=1024), "W-TOTAL-TOKENS", "group prefill_0"),
    # SGLang 0.5.9 (dsr1-nvfp4-wideep's engine) forwards the old name with a warning; 0.5.21 dropped it.
    ("renamed env", {"gb200_recipe": "dsr1-nvfp4-wideep"}, decode_env(SGLANG_CUTEDSL_MOE_NVFP4_DISPATCH="1"), "W-ENV-RENAMED", "group decode_0"),
    ("env never read", {}, decode_env(SGLANG_CUTEDSL_MOE_NVFP4_DISPATCH="1"), "W-ENV-NOOP", "group decode_0"),
    ("cutedsl experts per gpu", {"gb200_recipe": "dsr1-nvfp4-wideep"}, None, "W-CUTEDSL-EXPERTS", "group decode_0"),
]


@pytest.mark.parametrize(("build_kwargs", "mutate", "code", "where"), [row[1:] for row in WARNINGS], ids=[row[0] for row in WARNINGS])
def test_each_warning_and_its_silencing(build_kwargs: dict[str, Any], mutate: Mutation | None, code: str, where: str) -> None:
    groups, hostvars = build(**build_kwargs)
    if mutate:
        mutate(groups, hostvars)
    plan = build_plan(groups, hostvars)
    assert any(w["code"] == code and where in w["where"] for w in plan["warnings"]), plan["warnings"]
    for host in hostvars:
        hostvars[host]["gb200_silence_warnings"] = [code]
    assert not any(w["code"] == code for w in build_plan(groups, hostvars)["warnings"])


def test_the_working_env_name_does_not_warn() -> None:
    groups, hostvars = build(gb200_recipe="dsr1-fp8-wideep")
    set_var(hostvars, groups["prefill_0"], "gb200_prefill_env", {"SGL_DISABLE_TP_MEMORY_INBALANCE_CHECK": "1"})
    plan = build_plan(groups, hostvars)
    assert not any(w["code"] == "W-ENV-NOOP" and w["where"] == "group prefill_0" for w in plan["warnings"])


@pytest.mark.parametrize("trays", [1, 2, 3, 4, 6, 8, 9, 12, 18, 24, 36, 72])
def test_expert_divisibility_matches_the_table(trays: int) -> None:
    """288 physical experts (256 + 32 redundant): EP = 4 x trays must divide 288 (docs/gb200-facts.md §5 rule 6)."""
    groups, hostvars = build(decode=(trays,))
    if 288 % (4 * trays) == 0:
        build_plan(groups, hostvars)
    else:
        with pytest.raises(PlanError, match="E-EXPERTS-EP"):
            build_plan(groups, hostvars)


def test_a_secret_that_is_also_plain_env_is_refused() -> None:
    groups, hostvars = build()
    set_var(hostvars, groups["gb200"], "gb200_secret_env", {"PYTHONUNBUFFERED": None, "HF_TOKEN": None})
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    found = {(p.code, p.where, p.variable) for p in caught.value.problems}
    assert found == {("E-SECRET-ENV-CLASH", f"group {g}", "gb200_secret_env['PYTHONUNBUFFERED']") for g in ("prefill_0", "decode_0")}
