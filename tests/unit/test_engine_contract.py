"""The plan checks every rendered flag and env var against the catalogue of the pinned engine.

Each mistake a new user makes (issue 12's list) is refused, or warned for env, with a message
naming the variable and the fix. The catalogue itself is proven against the real parsers in
tests/contract (make contract); these tests read the committed catalogue only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from inventory_builder import build, set_var

from ansible_collections.wideep.gb200.plugins.plugin_utils.engine.contract import load_contract
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import PlanError, Problem

ROOT = Path(__file__).resolve().parents[2]
SEED_PAIR = ("0.6.1", "0.5.3.post2")
CURRENT_PAIR = ("1.6.1", "0.5.21")


def seed_recipe_on(tmp_path: Path, dynamo: str, sglang: str) -> str:
    """The seed's FP8 recipe, verbatim, pinned to another engine (what a user upgrading the image gets)."""
    data = yaml.safe_load((ROOT / "recipes" / "dsr1-fp8-wideep.yml").read_text())
    data["engine"] = {"dynamo": dynamo, "sglang": sglang, "image": f"test:{dynamo}"}
    path = tmp_path / f"seed-on-{sglang}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def problems_of(groups: dict[str, list[str]], hostvars: dict[str, dict[str, Any]]) -> list[Problem]:
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    return caught.value.problems


def only(problems: list[Problem], code: str) -> Problem:
    found = [p for p in problems if p.code == code]
    assert len(found) == 1, [p.render() for p in problems]
    return found[0]


def test_the_catalogued_pairs_load() -> None:
    for dynamo, sglang in (SEED_PAIR, CURRENT_PAIR, ("1.0.2", "0.5.9")):
        contract = load_contract(dynamo, sglang)
        assert contract is not None
        assert "--tp-size" in contract.options and "--model-path" in contract.options
        assert contract.options["--enable-dp-attention"].bare


def test_the_seed_command_on_todays_sglang_fails_as_the_engine_would(tmp_path: Path) -> None:
    """Parsed by SGLang 0.5.21 the seed's FP8 commands exit at start; the plan says why, and the fix."""
    recipe = seed_recipe_on(tmp_path, *CURRENT_PAIR)
    problems = problems_of(*build(gb200_recipe=recipe))
    choice = [p for p in problems if p.code == "E-ENGINE-FLAG-CHOICE"]
    assert {p.where for p in choice} == {"recipe dsr1-fp8-wideep (prefill)", "recipe dsr1-fp8-wideep (decode)"}
    assert "'cutlass_mla' is not a choice of --attention-backend in SGLang 0.5.21" in choice[0].message
    assert "use trtllm_mla" in choice[0].fix
    ambiguous = only(problems, "E-ENGINE-AMBIGUOUS-FLAG")
    assert "--cuda-graph-max-bs-decode or --cuda-graph-max-bs-prefill" in ambiguous.message
    assert ambiguous.variable == "flags.cuda-graph-max-bs"
    assert "in gb200_decode_args: use cuda-graph-max-bs-decode" in ambiguous.fix
    gone = only(problems, "E-ENGINE-UNKNOWN-FLAG")
    assert gone.variable == "flags.prefill-round-robin-balance"
    assert "(it exists in SGLang 0.5.3.post2, 0.5.9)" in gone.message
    # The version-keyed pairing rule does not demand a flag that SGLang 0.5.21 does not have.
    assert not [p for p in problems if p.code.startswith("E-ROUND-ROBIN")]


def test_removing_the_vanished_flags_gives_a_decode_command_todays_sglang_accepts(tmp_path: Path) -> None:
    recipe = seed_recipe_on(tmp_path, *CURRENT_PAIR)
    groups, hostvars = build(gb200_recipe=recipe)
    fixed = {"prefill-round-robin-balance": None, "cuda-graph-max-bs": None, "attention-backend": "trtllm_mla"}
    set_var(hostvars, groups["decode_0"], "gb200_decode_args", fixed)
    set_var(hostvars, groups["prefill_0"], "gb200_prefill_args", {"attention-backend": "trtllm_mla"})
    plan = build_plan(groups, hostvars)
    assert "--prefill-round-robin-balance" not in plan["hosts"]["d0-0"]["argv"]


def test_the_round_robin_rule_still_holds_for_the_seed_era_engine() -> None:
    groups, hostvars = build()
    set_var(hostvars, groups["decode_0"], "gb200_decode_args", {"prefill-round-robin-balance": None})
    set_var(hostvars, groups["gb200"], "gb200_recipe", "dsr1-fp8-wideep")
    assert only(problems_of(groups, hostvars), "E-ROUND-ROBIN-DECODE").where == "group decode_0"


def test_nvfp4_flags_on_the_seed_era_engine_name_the_versions_that_have_them(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "recipes" / "dsr1-nvfp4-wideep.yml").read_text())
    data["engine"] = {"dynamo": SEED_PAIR[0], "sglang": SEED_PAIR[1], "image": "old"}
    path = tmp_path / "nvfp4-old.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    problems = problems_of(*build(decode=(12,), gb200_recipe=str(path)))
    fp4 = [p for p in problems if p.variable == "flags.fp4-gemm-backend"]
    assert fp4 and fp4[0].code == "E-ENGINE-UNKNOWN-FLAG"
    assert "(it exists in SGLang 0.5.9, 0.5.21)" in fp4[0].message


@pytest.mark.parametrize(
    ("args", "code", "in_message", "in_fix"),
    [
        ({"cuda-graph-max-bss": 512}, "E-ENGINE-UNKNOWN-FLAG", "--cuda-graph-max-bss is not a flag", "did you mean cuda-graph-max-bs"),
        ({"enable-dp-lm-head": "yes"}, "E-ENGINE-BARE-FLAG", "takes no value", "true to set the flag, null to leave it out"),
        ({"max-running-requests": True}, "E-ENGINE-NEEDS-VALUE", "needs a value", "give its value"),
        ({"max-running-requests": "many"}, "E-ENGINE-FLAG-TYPE", "takes an integer", "give a number"),
        ({"deepep-mode": "fast"}, "E-ENGINE-FLAG-CHOICE", "'fast' is not a choice of --deepep-mode", "low_latency"),
        ({"max-running": 64}, "E-ENGINE-ABBREVIATED-FLAG", "silently read it as --max-running-requests", "write max-running-requests in full"),
        ({"mem-fraction-static": [0.8, 0.9]}, "E-ENGINE-FLAG-VALUES", "takes one value", "single value"),
    ],
)
def test_a_users_flag_mistake_is_refused_naming_the_variable(args: dict[str, Any], code: str, in_message: str, in_fix: str) -> None:
    groups, hostvars = build(gb200_recipe="dsr1-fp8-wideep")
    set_var(hostvars, groups["decode_0"], "gb200_decode_args", args)
    problem = only(problems_of(groups, hostvars), code)
    assert problem.where == "group decode_0"
    assert problem.variable == f"gb200_decode_args[{next(iter(args))!r}]"
    assert in_message in problem.message
    assert in_fix in problem.fix


def test_a_mistyped_variable_name_is_refused_with_a_did_you_mean() -> None:
    groups, hostvars = build()
    set_var(hostvars, groups["gb200"], "gb200_recipie", "dsr1-nvfp4-wideep")
    problem = only(problems_of(groups, hostvars), "E-UNKNOWN-VARIABLE")
    assert problem.variable == "gb200_recipie"
    assert "did you mean gb200_recipe?" in problem.fix
    assert problem.where.startswith("hosts ")


def test_an_unknown_silence_code_is_refused() -> None:
    groups, hostvars = build(gb200_silence_warnings=["W-ENV-NOPE"])
    problem = only(problems_of(groups, hostvars), "E-UNKNOWN-WARNING-CODE")
    assert "did you mean W-ENV-NOOP?" in problem.fix


def test_env_the_engine_never_reads_is_a_warning_with_the_working_spelling() -> None:
    groups, hostvars = build(gb200_recipe="dsr1-nvfp4-wideep", decode=(12,))
    set_var(hostvars, groups["decode_0"], "gb200_decode_env", {"SGL_DISABLE_TP_MEMORY_INBALANCE_CHECK": "1", "SGLANG_NO_SUCH_KNOB": "1", "NCCL_DEBUG": "INFO"})
    plan = build_plan(groups, hostvars)
    mine = {w["variable"]: w for w in plan["warnings"] if w["where"] == "group decode_0"}
    inverted = mine["gb200_decode_env['SGL_DISABLE_TP_MEMORY_INBALANCE_CHECK']"]
    assert inverted["code"] == "W-ENV-RENAMED"
    assert "means the opposite" in inverted["message"]
    assert "SGLANG_ENABLE_TP_MEMORY_INBALANCE_CHECK: '0'" in inverted["fix"]
    assert mine["gb200_decode_env['SGLANG_NO_SUCH_KNOB']"]["code"] == "W-ENV-NOOP"
    assert "gb200_decode_env['NCCL_DEBUG']" not in mine  # not an engine namespace: not judged


def test_every_problem_of_an_inventory_comes_together_once() -> None:
    groups, hostvars = build(gb200_engine="vllm", gb200_silence_warnings="W-IDLE-GPUS")
    set_var(hostvars, groups["gb200"], "gb200_recipe", "dsr1-fp8-wideep")
    set_var(hostvars, groups["gb200"], "gb200_prefil_args", {})
    set_var(hostvars, groups["prefill_0"], "gb200_prefill_args", ["tp-size=8"])
    set_var(hostvars, groups["decode_0"], "gb200_decode_args", {"enable-dp-lm-head": "yes", "cuda-graph-max-bss": 1})
    set_var(hostvars, groups["decode_0"], "gb200_decode_env", {"HF_TOKEN": "hf_secret_value_123"})
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    codes = [p.code for p in caught.value.problems]
    assert sorted(codes) == sorted(
        ["E-BAD-ENGINE", "E-BAD-TYPE", "E-UNKNOWN-VARIABLE", "E-BAD-TYPE", "E-ENGINE-BARE-FLAG", "E-ENGINE-UNKNOWN-FLAG", "E-SECRET-IN-ENV"]
    ), codes
    text = str(caught.value)
    assert text.count("Fix:") == len(codes)
    assert "hf_secret_value_123" not in text


# ---------------------------------------------------------------- the serving image (preflight)

from ansible_collections.wideep.gb200.plugins.plugin_utils.engine.probe import probe_problems, probe_requests  # noqa: E402


def _probe_stdout(sglang: str | None, dynamo: str | None, parsed: dict[str, Any] | None = None) -> str:
    import json

    out: dict[str, Any] = {"versions": {"sglang": sglang, "ai-dynamo": dynamo, "ai-dynamo-runtime": dynamo}}
    if parsed is not None:
        out["parsed"] = parsed
    return "some import warning\n" + json.dumps(out)


def test_one_probe_per_image_with_each_distinct_worker_command() -> None:
    plan = build_plan(*build(prefill=(2, 2), decode=(2,), gb200_recipe="dsr1-fp8-wideep"))
    (request,) = probe_requests(plan)
    assert request["image"] == "dynamo-wideep-gb200:0.6.1"
    assert request["host"] == "p0-0"
    # Ranks and heads differ only in --node-rank / --dist-init-addr: one command per role shape.
    assert sorted(request["argvs"]) == ["decode_0 rank 0", "prefill_0 rank 0"]
    mocker = build_plan(*build(gb200_recipe="dsr1-fp8-wideep", gb200_engine="mocker"))
    assert probe_requests(mocker)[0]["argvs"] == {}


def test_an_image_with_other_engine_versions_stops_preflight_naming_image_and_recipe() -> None:
    plan = build_plan(*build(gb200_recipe="dsr1-fp8-wideep"))
    (request,) = probe_requests(plan)
    problems = probe_problems({"rc": 0, "stdout": _probe_stdout("0.5.9", "1.0.2")}, request, plan)
    (problem,) = problems
    assert problem["code"] == "E-ENGINE-IMAGE-VERSIONS"
    assert problem["where"] == "host p0-0"
    assert "dynamo-wideep-gb200:0.6.1 holds SGLang 0.5.9 / Dynamo 1.0.2" in problem["message"]
    assert "recipe dsr1-fp8-wideep is written and checked for SGLang 0.5.3.post2 / Dynamo 0.6.1" in problem["message"]
    assert "a recipe for this image: dsr1-nvfp4-wideep" in problem["fix"]
    assert probe_problems({"rc": 0, "stdout": _probe_stdout("0.5.3.post2", "0.6.1")}, request, plan) == []


def test_a_refusal_by_the_images_own_parser_names_the_worker() -> None:
    plan = build_plan(*build(gb200_recipe="dsr1-fp8-wideep"))
    (request,) = probe_requests(plan)
    parsed = {"decode_0 rank 0": {"ok": False, "error": "error: unrecognized arguments: --x", "warnings": []}, "prefill_0 rank 0": {"ok": True}}
    (problem,) = probe_problems({"rc": 0, "stdout": _probe_stdout("0.5.3.post2", "0.6.1", parsed)}, request, plan)
    assert problem["code"] == "E-ENGINE-IMAGE-PARSE" and problem["variable"] == "gb200_decode_args"
    assert "unrecognized arguments: --x" in problem["message"]


def test_an_image_that_cannot_run_is_a_problem_not_a_crash() -> None:
    plan = build_plan(*build(gb200_recipe="dsr1-fp8-wideep"))
    (request,) = probe_requests(plan)
    (problem,) = probe_problems({"rc": 125, "stderr": "Unable to find image 'dynamo-wideep-gb200:0.6.1' locally"}, request, plan)
    assert problem["code"] == "E-ENGINE-PROBE" and "Unable to find image" in problem["message"]
