# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The serving image on the trays against the recipe's engine (preflight).

roles/preflight/files/engine_probe.py runs inside each distinct serving image, on one tray that
runs it: it reports the image's sglang / ai-dynamo versions and, for the sglang engine, runs the
image's own parser over every distinct rendered worker command. Here: which tray asks which image
what (probe_requests), and what its answer means against the plan (probe_problems).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import yaml

from .contract import ENGINES_DIR


def _normalised(argv: list[str]) -> tuple[str, ...]:
    """An argv with the per-tray values (rank, head address) blanked: equal argvs parse alike."""
    out = list(argv)
    for flag in ("--node-rank", "--dist-init-addr"):
        if flag in out and out.index(flag) + 1 < len(out):
            out[out.index(flag) + 1] = "0" if flag == "--node-rank" else "127.0.0.1:29500"
    return tuple(out)


def probe_requests(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One probe per distinct serving image: the tray that runs it (the first worker tray that
    launches with it) and, for the sglang engine, each distinct worker argv to parse there."""
    requests: dict[str, dict[str, Any]] = {}
    for host, spec in plan["hosts"].items():
        for container in spec.get("containers", []):
            if container.get("kind") != "worker":
                continue
            image = container["image"]
            entry = requests.setdefault(image, {"image": image, "host": host, "argvs": {}, "seen": set()})
            argv = list(container["command"])
            if plan["engine"] == "sglang" and argv[:3] == ["python3", "-m", "dynamo.sglang"]:
                key = _normalised(argv[3:])
                if key not in entry["seen"]:
                    entry["seen"].add(key)
                    entry["argvs"][f"{spec['worker']} rank {spec['node_rank']}"] = argv[3:]
    return [{k: v for k, v in entry.items() if k != "seen"} for entry in requests.values()]


def probe_problems(result: Mapping[str, Any], request: Mapping[str, Any], plan: Mapping[str, Any]) -> list[dict[str, str]]:
    """What one probe run (engine_probe.py in the image, via docker run) says against the plan."""
    image, host = request["image"], request["host"]
    wanted = plan["engine_versions"]
    recipe = plan["recipe"]["name"]
    where = f"host {host}"
    out: list[dict[str, str]] = []

    def add(code: str, variable: str, message: str, fix: str) -> None:
        item = {"severity": "error", "code": code, "where": where, "variable": variable, "message": message, "fix": fix}
        item["line"] = f"[{code}] {where}: {variable}: {message}. Fix: {fix}"
        out.append(item)

    if result.get("rc") != 0:
        said = (str(result.get("stderr") or "") + str(result.get("msg") or "")).strip().splitlines()[-3:]
        add(
            "E-ENGINE-PROBE",
            "gb200_image",
            f"could not run python3 in the serving image {image}: {' | '.join(said) or 'no output'}",
            "make the image present on the tray (stage or pull it) and check that it has python3",
        )
        return out
    try:
        found = json.loads(str(result.get("stdout", "")).strip().splitlines()[-1])
        versions = found["versions"]
    except (ValueError, IndexError, KeyError, TypeError):
        add(
            "E-ENGINE-PROBE",
            "gb200_image",
            f"the engine probe in {image} printed no result",
            "run it by hand: docker run --rm -i --entrypoint python3 IMAGE - < roles/preflight/files/engine_probe.py",
        )
        return out
    have = {"sglang": versions.get("sglang"), "dynamo": versions.get("ai-dynamo")}
    if have != {"sglang": wanted["sglang"], "dynamo": wanted["dynamo"]}:
        matching = [name for name, pin in bundled_pins().items() if pin == (have["dynamo"], have["sglang"])]
        add(
            "E-ENGINE-IMAGE-VERSIONS",
            "gb200_image",
            f"the serving image {image} holds SGLang {have['sglang'] or 'none'} / Dynamo {have['dynamo'] or 'none'}, "
            f"but recipe {recipe} is written and checked for SGLang {wanted['sglang']} / Dynamo {wanted['dynamo']}",
            f"use an image that holds them (the recipe's is {wanted['image']}) in gb200_image"
            + (f", or a recipe for this image: {', '.join(matching)}" if matching else ", or a recipe pinned to this image's engine"),
        )
        return out
    for name, parsed in sorted((found.get("parsed") or {}).items()):
        if not parsed.get("ok"):
            add(
                "E-ENGINE-IMAGE-PARSE",
                "gb200_" + ("prefill" if name.startswith("prefill") else "decode") + "_args",
                f"the image's own parser (dynamo.sglang) refuses the {name} command: {parsed.get('error')}",
                "fix the flag it names (the plan's catalogue should have caught it: report the case)",
            )
    return out


@cache
def bundled_pins() -> dict[str, tuple[str, str]]:
    """recipe name -> (dynamo, sglang) for the recipes in this collection."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted((ENGINES_DIR.parent / "recipes").glob("*.yml")):
        with open(path, encoding="utf-8") as handle:
            engine = (yaml.safe_load(handle) or {}).get("engine") or {}
        out[path.stem] = (str(engine.get("dynamo")), str(engine.get("sglang")))
    return out
