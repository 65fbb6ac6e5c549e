"""Topology -> workers -> per-host launch specs: ranks, heads, sizes, engines."""

from __future__ import annotations

from typing import Any

import pytest
from inventory_builder import build, set_var

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import PlanError


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(f"--{name}") + 1]


@pytest.mark.parametrize(
    ("prefill", "decode"),
    [
        ((1,), (1,)),
        ((2,), (2,)),
        ((1, 1, 1, 1), (12,)),  # srt-slurm NVFP4 max-tpt shape
        ((2, 2, 2), (8,)),
        ((2,), (18,)),  # decode of 72 GPUs (EP 72 divides 288)
        ((2,) * 6, (6, 6)),
    ],
)
def test_ranks_heads_and_sizes(prefill: tuple[int, ...], decode: tuple[int, ...]) -> None:
    groups, hostvars = build(prefill=prefill, decode=decode)
    plan = build_plan(groups, hostvars)
    assert plan["expected_instances"] == {"prefill": len(prefill), "decode": len(decode)}
    for worker in plan["workers"]:
        hosts = groups[worker["name"]]
        head_ip = hostvars[hosts[0]]["ansible_host"]
        gpus = 4 * len(hosts)
        assert worker["hosts"] == hosts
        assert worker["head_ip"] == head_ip
        assert (worker["tp_size"], worker["dp_size"], worker["nnodes"]) == (gpus, gpus, len(hosts))
        for rank, host in enumerate(hosts):
            argv = plan["hosts"][host]["argv"]
            assert _flag(argv, "node-rank") == str(rank)
            assert _flag(argv, "nnodes") == str(len(hosts))
            assert _flag(argv, "dist-init-addr") == f"{head_ip}:29500"
            assert _flag(argv, "tp-size") == _flag(argv, "dp-size") == str(gpus)
            assert _flag(argv, "disaggregation-mode") == worker["role"]
            assert plan["hosts"][host]["containers"][0]["name"] == f"wideep-{worker['name']}-rank{rank}"


def test_workers_sort_naturally_and_heads_are_separate() -> None:
    groups, hostvars = build(prefill=(1,) * 11, decode=(2,))
    plan = build_plan(groups, hostvars)
    names = [w["name"] for w in plan["workers"] if w["role"] == "prefill"]
    assert names == [f"prefill_{i}" for i in range(11)]
    heads = {w["dist_init_addr"] for w in plan["workers"]}
    assert len(heads) == 12


def test_head_may_share_a_tray_with_a_worker() -> None:
    groups, hostvars = build(head_separate=False)
    plan = build_plan(groups, hostvars)
    head = plan["hosts"]["p0-0"]
    assert [c["kind"] for c in head["containers"]] == ["etcd", "nats", "frontend", "worker"]
    assert head["groups"] == ["dynamo_head", "prefill_0"]


def test_every_worker_gets_control_plane_env() -> None:
    groups, hostvars = build(prefill=(2, 2), decode=(4,))
    plan = build_plan(groups, hostvars)
    head_ip = hostvars["head"]["ansible_host"]
    for host in groups["prefill"] + groups["decode"]:
        env = plan["hosts"][host]["env"]
        assert env["ETCD_ENDPOINTS"] == f"http://{head_ip}:2379"
        assert env["NATS_SERVER"] == f"nats://{head_ip}:4222"
    assert plan["frontend"]["url"] == f"http://{head_ip}:8000"


def test_user_args_override_in_place_append_and_remove() -> None:
    groups, hostvars = build(gb200_recipe="dsr1-fp8-wideep")
    set_var(
        hostvars, groups["prefill_0"], "gb200_prefill_args", {"mem-fraction-static": 0.75, "log-level": None, "cuda-graph-bs": [1, 2, 4], "enable-eplb": True}
    )
    plan = build_plan(groups, hostvars)
    argv = plan["hosts"]["p0-0"]["argv"]
    assert _flag(argv, "mem-fraction-static") == "0.75"
    assert argv.index("--mem-fraction-static") < argv.index("--disaggregation-transfer-backend")  # in place
    assert "--log-level" not in argv
    assert argv[-5:] == ["--cuda-graph-bs", "1", "2", "4", "--enable-eplb"]  # appended, in user order
    assert "--log-level" in plan["hosts"]["d0-0"]["argv"]  # decode untouched


def test_per_worker_group_vars_tune_one_worker() -> None:
    groups, hostvars = build(prefill=(2, 2), gb200_recipe="dsr1-fp8-wideep")
    set_var(hostvars, groups["prefill_1"], "gb200_prefill_args", {"chunked-prefill-size": 65536})
    plan = build_plan(groups, hostvars)
    assert _flag(plan["hosts"]["p1-0"]["argv"], "chunked-prefill-size") == "65536"
    assert _flag(plan["hosts"]["p0-0"]["argv"], "chunked-prefill-size") == "16384"


def test_env_merge_and_removal() -> None:
    groups, hostvars = build()
    set_var(hostvars, groups["decode_0"], "gb200_decode_env", {"NCCL_DEBUG": "INFO", "SGLANG_HACK_SEQ_BOOTSTRAP_ROOM": None})
    plan = build_plan(groups, hostvars)
    env = plan["hosts"]["d0-1"]["env"]
    assert env["NCCL_DEBUG"] == "INFO"
    assert "SGLANG_HACK_SEQ_BOOTSTRAP_ROOM" not in env
    assert not any(w["code"] == "W-ENV-NOOP" and w["where"] == "group decode_0" for w in plan["warnings"])


def test_mocker_runs_each_worker_on_its_rank0_tray_only() -> None:
    groups, hostvars = build(prefill=(2,), decode=(2, 1), gb200_engine="mocker", gb200_container_gpus=None)
    plan = build_plan(groups, hostvars)
    p0, p1 = plan["hosts"]["p0-0"], plan["hosts"]["p0-1"]
    assert p0["launch"] and not p1["launch"]
    assert p1["containers"] == [] and "rank 0" in p1["note"]
    assert p0["argv"][:3] == ["python3", "-m", "dynamo.mocker"]
    assert _flag(p0["argv"], "disaggregation-mode") == "prefill"
    assert _flag(p0["argv"], "data-parallel-size") == "8"
    assert _flag(p0["argv"], "bootstrap-ports") == "30001"
    assert _flag(p0["argv"], "model-name") == "deepseek-ai/DeepSeek-R1"
    assert _flag(p0["argv"], "engine-type") == "sglang"  # the mocker simulates SGLang's scheduler, not vLLM's
    d1 = plan["hosts"]["d1-0"]
    assert _flag(d1["argv"], "disaggregation-mode") == "decode" and "--bootstrap-ports" not in d1["argv"]
    assert _flag(d1["argv"], "data-parallel-size") == "4"
    assert p0["containers"][0]["gpus"] is None
    assert [w["launch_hosts"] for w in plan["workers"]] == [["p0-0"], ["d0-0"], ["d1-0"]]


GROUP = ["python3", "/opt/wideep-emu/group_double.py"]


def test_mocker_group_command_runs_every_rank_of_a_multi_tray_worker() -> None:
    """gb200_mocker_group_command: rank 0 wraps the mocker in the group double, rank k joins it."""
    groups, hostvars = build(prefill=(2,), decode=(3, 1), gb200_engine="mocker", gb200_container_gpus=None, gb200_mocker_group_command=GROUP)
    plan = build_plan(groups, hostvars)
    alone = build_plan(*build(prefill=(2,), decode=(3, 1), gb200_engine="mocker", gb200_container_gpus=None))
    by_name = {w["name"]: w for w in plan["workers"]}
    for name, hosts in (("prefill_0", ["p0-0", "p0-1"]), ("decode_0", ["d0-0", "d0-1", "d0-2"])):
        worker, nnodes = by_name[name], len(hosts)
        addr = worker["dist_init_addr"]
        assert worker["launch_hosts"] == hosts
        head = plan["hosts"][hosts[0]]
        mocker = alone["hosts"][hosts[0]]["argv"]
        assert head["argv"] == [*GROUP, "--rank", "0", "--nnodes", str(nnodes), "--addr", addr, "--", *mocker]
        assert head["containers"][0]["command"] == head["argv"]
        rendezvous = [p for p in head["ports"] if p["variable"] == "gb200_dist_init_port"]
        assert [p["port"] for p in rendezvous] == [29500], head["ports"]  # the double's listener; no SGLang ZMQ ports
        for rank, host in enumerate(hosts):
            spec = plan["hosts"][host]
            assert spec["launch"] and spec["node_rank"] == rank
            (container,) = spec["containers"]
            assert container["name"] == f"wideep-{name}-rank{rank}"
            assert container["labels"]["wideep.gb200.rank"] == str(rank)
            assert container["restart_policy"] == "no"  # a rank restarted alone cannot rejoin
            assert container["secret_env"] == head["containers"][0]["secret_env"]
            if rank:
                assert spec["argv"] == container["command"] == [*GROUP, "--rank", str(rank), "--nnodes", str(nnodes), "--addr", addr]
                assert spec["ports"] == []
    # A worker on one tray has no group: the mocker alone, with gb200_restart_policy.
    single = plan["hosts"]["d1-0"]
    assert single["argv"] == alone["hosts"]["d1-0"]["argv"] and single["argv"][:3] == ["python3", "-m", "dynamo.mocker"]
    assert single["containers"][0]["restart_policy"] == "unless-stopped"
    assert by_name["decode_1"]["launch_hosts"] == ["d1-0"]


def test_without_group_command_the_mocker_keeps_its_restart_policy() -> None:
    plan = build_plan(*build(prefill=(2,), decode=(2,), gb200_engine="mocker", gb200_container_gpus=None, gb200_restart_policy="always"))
    assert {c["restart_policy"] for h in plan["hosts"].values() for c in h["containers"]} == {"always"}


def test_sglang_multi_tray_workers_do_not_restart_alone() -> None:
    plan = build_plan(*build(prefill=(2,), decode=(1,)))
    policies = {host: [c["restart_policy"] for c in spec["containers"]] for host, spec in plan["hosts"].items()}
    assert policies == {"head": ["unless-stopped"] * 3, "p0-0": ["no"], "p0-1": ["no"], "d0-0": ["unless-stopped"]}


def test_group_port_collides_with_a_head_port() -> None:
    groups, hostvars = build(head_separate=False, gb200_engine="mocker", gb200_container_gpus=None, gb200_mocker_group_command=GROUP, gb200_frontend_port=29500)
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    assert [p.code for p in caught.value.problems] == ["E-PORT-COLLISION"], caught.value


def test_head_interface_reads_facts_and_node_ip_wins() -> None:
    groups, hostvars = build(gb200_head_interface="ib0")
    for index, host in enumerate(groups["gb200"]):
        hostvars[host]["ansible_facts"] = {"ib0": {"ipv4": {"address": f"192.0.2.{index + 1}"}}}
    hostvars["d0-0"]["gb200_node_ip"] = "198.51.100.7"
    plan = build_plan(groups, hostvars)
    assert plan["hosts"]["p0-1"]["address"] == "192.0.2.3"
    assert _flag(plan["hosts"]["p0-1"]["argv"], "dist-init-addr") == "192.0.2.2:29500"
    assert _flag(plan["hosts"]["d0-1"]["argv"], "dist-init-addr") == "198.51.100.7:29500"


def test_ipv6_addresses_are_bracketed() -> None:
    groups, hostvars = build()
    for index, host in enumerate(groups["gb200"]):
        hostvars[host]["ansible_host"] = f"2001:db8::{index + 1}"
    plan = build_plan(groups, hostvars)
    assert _flag(plan["hosts"]["p0-1"]["argv"], "dist-init-addr") == "[2001:db8::2]:29500"
    assert plan["control_plane"]["etcd_endpoints"] == "http://[2001:db8::1]:2379"


def test_nvfp4_recipe_renders_role_specific_moe() -> None:
    groups, hostvars = build(prefill=(1,), decode=(12,), gb200_recipe="dsr1-nvfp4-wideep")
    plan = build_plan(groups, hostvars)
    pre, dec = plan["hosts"]["p0-0"]["argv"], plan["hosts"]["d0-0"]["argv"]
    assert _flag(pre, "moe-runner-backend") == "flashinfer_cutlass" and "--moe-a2a-backend" not in pre
    assert _flag(dec, "moe-runner-backend") == "flashinfer_cutedsl" and _flag(dec, "moe-a2a-backend") == "deepep"
    assert _flag(dec, "quantization") == _flag(pre, "quantization") == "modelopt_fp4"
    assert _flag(dec, "ep-size") == "48"
    assert plan["served_model_name"] == "nvidia/DeepSeek-R1-0528-NVFP4-v2"
    assert plan["hosts"]["d0-0"]["env"]["SGLANG_DEEPEP_NUM_MAX_DISPATCH_TOKENS_PER_RANK"] == "1024"
    assert plan["warnings"] == []


def test_recipe_file_path(tmp_path: Any) -> None:
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "recipes" / "dsr1-fp8-wideep.yml"
    custom = tmp_path / "mine.yml"
    custom.write_text(source.read_text().replace("context-length: 2716", "context-length: 4096"))
    groups, hostvars = build(gb200_recipe=str(custom))
    plan = build_plan(groups, hostvars)
    assert _flag(plan["hosts"]["p0-0"]["argv"], "context-length") == "4096"


def test_plan_is_json_serialisable_and_deterministic() -> None:
    import json

    first = json.dumps(build_plan(*build(prefill=(2, 2), decode=(4,))), sort_keys=True)
    second = json.dumps(build_plan(*build(prefill=(2, 2), decode=(4,))), sort_keys=True)
    assert first == second
