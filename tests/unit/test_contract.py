"""The documented contract equals the code: argument specs, recipes, launch scripts."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from inventory_builder import build

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.inventory import DEFAULTS
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.recipes import (
    RecipeError,
    known_recipes,
    load_recipe,
    parse_recipe,
)
from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.render import docker_run_argv, launch_script

ROOT = Path(__file__).resolve().parents[2]


def test_argument_spec_lists_every_variable_with_the_code_default() -> None:
    spec = yaml.safe_load((ROOT / "roles/plan/meta/argument_specs.yml").read_text())
    options = {k: v for k, v in spec["argument_specs"]["main"]["options"].items() if k.startswith("gb200_")}
    assert set(options) == set(DEFAULTS)
    for name, (default, _scope) in DEFAULTS.items():
        assert options[name].get("default") == default, name


def test_readme_documents_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in DEFAULTS if f"`{name}`" not in readme]
    assert not missing


def test_bundled_recipes_load() -> None:
    assert known_recipes() == ["dsr1-fp8", "dsr1-fp8-wideep", "dsr1-nvfp4", "dsr1-nvfp4-wideep"]
    for name in known_recipes():
        recipe = load_recipe(name)
        assert recipe is not None and recipe.name == name


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["flags"].update({"--tp-size": 8}), "without '--'"),
        (lambda r: r["flags"].update({"tp-size": {"prefil": 8}}), "role keys"),
        (lambda r: r["flags"].update({"dist-init-addr": "{head}:1"}), "unknown placeholder"),
        (lambda r: r["env"].update({"X": True}), "quoted strings"),
        (lambda r: r.pop("model"), "'model' must be a dict"),
    ],
)
def test_malformed_recipes_are_refused(mutate: Any, message: str) -> None:
    data = yaml.safe_load((ROOT / "recipes/dsr1-fp8-wideep.yml").read_text())
    mutate(data)
    with pytest.raises(RecipeError, match=message):
        parse_recipe(data, "test")


def test_launch_scripts_are_valid_bash_and_match_the_spec(tmp_path: Path) -> None:
    plan = build_plan(*build(prefill=(2,), decode=(2,), head_separate=False))
    for host, host_plan in plan["hosts"].items():
        script = launch_script(host, host_plan, plan)
        path = tmp_path / f"{host}.sh"
        path.write_text(script)
        subprocess.run(["bash", "-n", str(path)], check=True)
        # Each `docker run` in the script, parsed back, is exactly the spec's argv.
        runs = [shlex.split(block.replace("\\\n", " ")) for block in script.split("\n\n")[1:]]
        runs = [words[words.index("run") - 1 :] for words in runs if "run" in words]
        assert runs == [docker_run_argv(spec) for spec in host_plan["containers"]]


def test_launch_script_runs_the_containers_with_a_fake_docker(tmp_path: Path) -> None:
    """Execute a rendered script against a recording `docker` on PATH: it runs, in order."""
    plan = build_plan(*build())
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    fake.chmod(0o755)
    script = tmp_path / "head.sh"
    script.write_text(launch_script("head", plan["hosts"]["head"], plan))
    subprocess.run(["bash", str(script)], check=True, env={"PATH": f"{fake.parent}:/usr/bin:/bin"})
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["rm", "run", "rm", "run", "rm", "run"]
    assert "--name wideep-frontend" in calls[-1] and calls[-1].endswith("python3 -m dynamo.frontend --http-port=8000 --migration-limit=3")


def _public_filters() -> list[str]:
    import importlib

    names: list[str] = []
    for path in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module(f"ansible_collections.wideep.gb200.plugins.filter.{path.stem}")
        names += [n for n in module.FilterModule().filters() if not n.startswith("_")]
    return names


@pytest.mark.parametrize("kind", ["filter", "module"])
def test_ansible_doc_documents_every_public_plugin(kind: str) -> None:
    """Public plugins (modules, filters without a leading _) have DOCUMENTATION ansible-doc reads."""
    import json
    import os
    import sys

    names = _public_filters() if kind == "filter" else [p.stem for p in sorted((ROOT / "plugins" / "modules").glob("*.py"))]
    assert names
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", kind, "--json", *[f"wideep.gb200.{n}" for n in names]],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    docs = json.loads(done.stdout)
    missing = [n for n in names if not (docs.get(f"wideep.gb200.{n}") or {}).get("doc", {}).get("short_description")]
    assert not missing, f"{kind}s without documentation: {missing}"


def test_where_things_are_matches_the_tree() -> None:
    """Every path the README's "Where things are" table names exists; every plugin_utils package is named."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    paths = [p for cell in first_cells for p in re.findall(r"`([^`]+)`", cell)]
    assert len(paths) > 20
    missing = [p for p in paths if "<" not in p and not (ROOT / p.rstrip("/")).exists() and not (ROOT / "plugins" / "plugin_utils" / p.rstrip("/")).exists()]
    assert not missing, f"the README names paths that do not exist: {missing}"
    packages = sorted(p.name for p in (ROOT / "plugins" / "plugin_utils").iterdir() if p.is_dir() and (p / "__init__.py").exists())
    unnamed = [p for p in packages if p + "/" not in section]
    assert not unnamed, f"plugin_utils packages the README does not place: {unnamed}"
