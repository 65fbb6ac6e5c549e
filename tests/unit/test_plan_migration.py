"""gb200_migration_limit: Dynamo request migration, where the pinned Dynamo reads it.

Dynamo 1.0.2 and 1.6.1 declare --migration-limit on the frontend (dynamo/frontend/frontend_args.py
of their wheels); Dynamo 0.6.1 declares it on the worker (dynamo/sglang/args.py, listed in
engines/catalogue/dynamo-0.6.1.json) and its frontend has no such flag.
"""

from __future__ import annotations

from typing import Any

import pytest
from inventory_builder import build, set_var

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import PlanError


def _frontend(plan: dict[str, Any]) -> list[str]:
    (spec,) = [c for c in plan["hosts"]["head"]["containers"] if c["kind"] == "frontend"]
    command: list[str] = spec["command"]
    return command


def _worker_argvs(plan: dict[str, Any]) -> list[list[str]]:
    return [spec["argv"] for spec in plan["hosts"].values() if spec.get("argv")]


@pytest.mark.parametrize(
    ("recipe", "limit", "frontend_tail"),
    [
        ("dsr1-fp8", None, ["--http-port=8000", "--migration-limit=3"]),  # the default
        ("dsr1-fp8", 0, ["--http-port=8000", "--migration-limit=0"]),  # off, and said so
        ("dsr1-fp8", 7, ["--http-port=8000", "--migration-limit=7"]),
        ("dsr1-nvfp4-wideep", 2, ["--http-port=8000", "--migration-limit=2"]),  # Dynamo 1.0.2
    ],
)
def test_dynamo_1x_frontend_takes_the_limit(recipe: str, limit: int | None, frontend_tail: list[str]) -> None:
    extra = {} if limit is None else {"gb200_migration_limit": limit}
    groups, hostvars = build(prefill=(1,), decode=(1,) if recipe != "dsr1-nvfp4-wideep" else (2,), gb200_recipe=recipe, **extra)
    plan = build_plan(groups, hostvars)
    assert _frontend(plan)[3:] == frontend_tail
    assert all("--migration-limit" not in argv for argv in _worker_argvs(plan))


def test_dynamo_061_workers_take_the_limit_and_its_frontend_does_not() -> None:
    groups, hostvars = build(gb200_recipe="dsr1-fp8-wideep", gb200_migration_limit=2)
    plan = build_plan(groups, hostvars)
    assert not any(word.startswith("--migration-limit") for word in _frontend(plan))
    argvs = _worker_argvs(plan)
    assert argvs and all(argv[argv.index("--migration-limit") + 1] == "2" for argv in argvs)


def test_dynamo_061_user_args_win_and_zero_adds_nothing() -> None:
    groups, hostvars = build(gb200_recipe="dsr1-fp8-wideep", gb200_migration_limit=2)
    set_var(hostvars, groups["decode_0"], "gb200_decode_args", {"migration-limit": 5})
    plan = build_plan(groups, hostvars)
    by_worker = {spec["worker"]: spec["argv"] for spec in plan["hosts"].values() if spec.get("argv")}
    assert by_worker["decode_0"][by_worker["decode_0"].index("--migration-limit") + 1] == "5"
    assert by_worker["prefill_0"][by_worker["prefill_0"].index("--migration-limit") + 1] == "2"
    groups, hostvars = build(gb200_recipe="dsr1-fp8-wideep", gb200_migration_limit=0)
    assert all("--migration-limit" not in argv for argv in _worker_argvs(build_plan(groups, hostvars)))


def test_mocker_engine_puts_the_limit_on_the_frontend() -> None:
    groups, hostvars = build(gb200_engine="mocker", gb200_migration_limit=4)
    plan = build_plan(groups, hostvars)
    assert _frontend(plan)[-1] == "--migration-limit=4"


@pytest.mark.parametrize("bad", [-1, "3", 1.5, True, 4294967296])
def test_bad_limit_is_one_clear_error(bad: Any) -> None:
    groups, hostvars = build(gb200_migration_limit=bad)
    with pytest.raises(PlanError) as caught:
        build_plan(groups, hostvars)
    (problem,) = [p for p in caught.value.problems if p.variable == "gb200_migration_limit"]
    assert problem.code == "E-BAD-TYPE"
    assert problem.message == f"{bad!r} is not an integer in [0, 4294967295]"
    assert problem.fix == "set gb200_migration_limit to an integer between 0 and 4294967295"
