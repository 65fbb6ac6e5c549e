"""Every recipe, rendered on several topologies, parsed by the real parsers of the engine it pins.

And the committed catalogue agrees with those parsers: what the plan's catalogue check lets
through, the engine accepts; what it refuses, the engine refuses (option by option).
Run by `make contract` (part of `make test`); the venvs are built once per machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_venvs import ENGINES, pair, probe
from inventory_builder import build

from ansible_collections.wideep.gb200.plugins.plugin_utils.engine.contract import Contract, Origin, check_flags, load_contract
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.problems import Problems
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.recipes import known_recipes, load_recipe

pytestmark = pytest.mark.contract

# Worker shapes the field runs: the seeds' 2+2 trays, small workers, and a 12-tray decode
# (EP 48, the published NVFP4 tuning). (256 + 32 redundant experts) divides every EP here.
TOPOLOGIES: dict[str, dict[str, Any]] = {
    "1P(2 trays)+1D(2 trays)": {"prefill": (2,), "decode": (2,)},
    "2P(1 tray each)+1D(4 trays)": {"prefill": (1, 1), "decode": (4,)},
    "1P(2 trays)+1D(12 trays)": {"prefill": (2,), "decode": (12,)},
}


def _recipe_pairs() -> list[tuple[str, str, bool]]:
    """(recipe, pair, pinned) for the pinned pair and every pair the recipe also claims."""
    out = []
    for name in known_recipes():
        recipe = load_recipe(name)
        assert recipe is not None
        out.append((name, pair(recipe.engine.dynamo, recipe.engine.sglang), True))
        out += [(name, pair(d, s), False) for d, s in recipe.engine.also_parses]
    return out


def rendered_argvs(recipe: str, pinned: bool = True) -> dict[str, list[str]]:
    """Every distinct worker argv (ranks 0 and 1 of each role) of the recipe on each topology.

    Under a pair the recipe only also claims, the recipe's own flags are what must parse: request
    migration (gb200_migration_limit) goes where the pinned Dynamo reads it (0.6.1: the workers;
    1.x: the frontend, whose workers refuse the flag), so it is left out there."""
    out: dict[str, list[str]] = {}
    extra: dict[str, Any] = {} if pinned else {"gb200_migration_limit": 0}
    for topo, shape in TOPOLOGIES.items():
        plan = build_plan(*build(**shape, gb200_recipe=recipe, **extra))
        for host, spec in plan["hosts"].items():
            if spec["argv"] and spec["node_rank"] in (0, 1):
                assert spec["argv"][:3] == ["python3", "-m", "dynamo.sglang"], host
                out[f"{topo} {spec['worker']} rank {spec['node_rank']}"] = spec["argv"][3:]
    return out


@pytest.mark.parametrize(("recipe", "engine_pair", "pinned"), _recipe_pairs(), ids=str)
def test_every_rendered_worker_command_parses(recipe: str, engine_pair: str, pinned: bool, model_dir: Path) -> None:
    argvs = rendered_argvs(recipe, pinned)
    result = probe(engine_pair, argvs, model_dir)
    dynamo, sglang = engine_pair.removeprefix("dynamo-").split("+sglang-")
    assert result["versions"] == {"ai-dynamo": dynamo, "ai-dynamo-runtime": dynamo, "sglang": sglang}
    failed = {name: r["error"] for name, r in result["parsed"].items() if not r["ok"]}
    assert not failed, f"{recipe} under {engine_pair}: {failed}"
    assert len(result["parsed"]) == len(argvs) >= 6
    if pinned:
        # Under its own engine a recipe uses no flag that the engine itself calls deprecated.
        deprecated = {name: r["warnings"] for name, r in result["parsed"].items() if r["warnings"]}
        assert not deprecated, deprecated


def _pinned_pairs() -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for name in known_recipes():
        recipe = load_recipe(name)
        assert recipe is not None
        seen[(recipe.engine.dynamo, recipe.engine.sglang)] = None
    return list(seen)


def _as_flags(argv: list[str]) -> list[tuple[str, Any]]:
    """argv -> [(name, value)] as the plan holds flags: True for a bare flag, a list for several."""
    out: list[tuple[str, Any]] = []
    for word in argv:
        if word.startswith("--"):
            out.append((word[2:], True))
        else:
            name, value = out[-1]
            out[-1] = (name, word if value is True else [*value, word] if isinstance(value, list) else [value, word])
    return out


def _catalogue_errors(contract: Contract, argv: list[str]) -> list[str]:
    problems = Problems()
    check_flags(problems, contract, "decode", _as_flags(argv), lambda _n: Origin("test", "flags", ""))
    return [p.code for p in problems.errors]


BASE = ["--model-path", "/model/", "--served-model-name", "m", "--disaggregation-mode", "decode", "--tp-size", "8"]


def _cases(contract: Contract) -> dict[str, tuple[list[str], bool]]:
    """name -> (argv, the catalogue says it parses): one or two per option the catalogue knows how to feed."""
    cases: dict[str, tuple[list[str], bool]] = {"base": (BASE, True)}
    for flag, option in contract.options.items():
        if option.owner.startswith("Dynamo") or flag in BASE or option.deprecated:
            continue  # Dynamo's own flags start other worker kinds; deprecated ones warn or stop
        if option.bare:
            cases[f"{flag} bare"] = ([*BASE, flag], True)
            cases[f"{flag} with a value"] = ([*BASE, flag, "yes"], False)
        elif option.choices and option.nargs in (None, "?"):
            cases[f"{flag} {option.choices[0]}"] = ([*BASE, flag, option.choices[0]], True)
            cases[f"{flag} not a choice"] = ([*BASE, flag, "not-a-choice"], False)
        elif option.kind in ("int", "float") and option.nargs is None:
            cases[f"{flag} 1"] = ([*BASE, flag, "1"], True)
            cases[f"{flag} not a number"] = ([*BASE, flag, "x1"], False)
            cases[f"{flag} without its value"] = ([*BASE, flag, "--trust-remote-code"], False)
    cases["unknown flag"] = ([*BASE, "--no-such-flag-anywhere", "1"], False)
    ambiguous = next(p for p in ("--enable-dp", "--disable-cuda", "--moe-") if sum(f.startswith(p) for f in contract.options) > 1)
    cases["ambiguous abbreviation"] = ([*BASE, ambiguous], False)
    return cases


@pytest.mark.parametrize(("dynamo", "sglang"), _pinned_pairs(), ids=str)
def test_catalogue_and_real_parser_agree_option_by_option(dynamo: str, sglang: str, model_dir: Path) -> None:
    contract = load_contract(dynamo, sglang)
    assert contract is not None
    cases = _cases(contract)
    assert len(cases) > 300  # every SGLang release catalogued here has > 250 options
    for name, (argv, accepts) in cases.items():
        errors = _catalogue_errors(contract, argv)
        assert (not errors) == accepts, f"{name}: catalogue check gave {errors}"
    result = probe(pair(dynamo, sglang), {n: case[0] for n, case in cases.items()}, model_dir)
    disagree = {
        name: result["parsed"][name]["error"]
        for name, (_unused, accepts) in cases.items()
        if result["parsed"][name]["ok"] != accepts
    }
    assert not disagree, f"the catalogue and SGLang {sglang} / Dynamo {dynamo} disagree on {len(disagree)} of {len(cases)} cases: {disagree}"


def test_a_unique_abbreviation_is_refused_although_argparse_accepts_it(model_dir: Path) -> None:
    """Stricter than the engine on purpose: argparse silently reads --max-running as
    --max-running-requests; a release that adds a flag with that prefix turns it into an error."""
    dynamo, sglang = _pinned_pairs()[0]
    contract = load_contract(dynamo, sglang)
    assert contract is not None
    argv = [*BASE, "--max-running", "64"]
    assert _catalogue_errors(contract, argv) == ["E-ENGINE-ABBREVIATED-FLAG"]
    assert probe(pair(dynamo, sglang), {"abbreviated": argv}, model_dir)["parsed"]["abbreviated"]["ok"]


def test_the_committed_catalogue_is_what_the_released_packages_give() -> None:
    proc = subprocess.run([sys.executable, str(ENGINES), "check"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
