# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Reading the Dynamo frontend's /health: which prefill and decode workers are registered."""

from __future__ import annotations

from typing import Any

# How Dynamo names the endpoints workers serve (dynamo.sglang and dynamo.mocker alike, 1.0.2 and
# 1.6.1: dynamo/sglang/args.py, dynamo/mocker/args.py): prefill -> dyn://<ns>.prefill.generate,
# decode (and aggregated) -> dyn://<ns>.backend.generate. Only `generate` instances are workers:
# a prefill worker also lists one KV-query endpoint per DP rank under the same instance_id.
ROLE_COMPONENTS = {"prefill": "prefill", "decode": "backend"}


def registered(health: Any, namespace: str = "dynamo") -> dict[str, Any]:
    """Count distinct worker instances per role in a /health document.

    A "healthy" status alone proves nothing (the frontend reports it with no worker at all);
    what counts is one `generate` instance per planned worker.
    """
    instances = health.get("instances", []) if isinstance(health, dict) else []
    found: dict[str, dict[str, str]] = {role: {} for role in ROLE_COMPONENTS}
    for instance in instances:
        if not isinstance(instance, dict) or instance.get("namespace", namespace) != namespace:
            continue
        if instance.get("endpoint") != "generate":
            continue
        for role, component in ROLE_COMPONENTS.items():
            if instance.get("component") == component:
                transport = instance.get("transport") or {}
                address = transport.get("tcp", "") if isinstance(transport, dict) else ""
                found[role][str(instance.get("instance_id"))] = str(address).split("/", maxsplit=1)[0]
    return {
        "prefill": len(found["prefill"]),
        "decode": len(found["decode"]),
        "addresses": {role: sorted(set(v.values())) for role, v in found.items()},
    }


def ready(health: Any, expected: dict[str, int], namespace: str = "dynamo") -> bool:
    counts = registered(health, namespace)
    return all(counts[role] == expected.get(role, 0) for role in ROLE_COMPONENTS)
