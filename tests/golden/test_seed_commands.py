"""The example inventory reproduces the seed's commands: every flag, value and env var.

The expected commands are parsed from the seed document itself (a verbatim copy in
tests/fixtures/seeds/, see its README), not copied into this test. The seed-exact recipe
dsr1-fp8-wideep is pinned to the seed's engine (Dynamo 0.6.1 / SGLang 0.5.3.post2), under
which tests/contract parses these commands with the real parsers.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "fixtures" / "seeds" / "001_80a4810b5c225469.txt"
INVENTORY = ROOT / "inventories" / "gb200"


def _seed_command(marker: str) -> tuple[dict[str, str], list[str]]:
    """The env and argv of the bash block that follows `marker` in the seed."""
    text = SEED.read_text()
    start = text.index(marker)
    if not marker.startswith("#"):  # a heading: the command is the next bash block
        start = text.index("```bash", start) + len("```bash")
    block = text[start:]
    block = block[: block.index("```")]
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    words = shlex.split(" ".join(line.rstrip("\\").strip() for line in lines if not line.startswith("python3 -m dynamo.frontend")))
    env: dict[str, str] = {}
    while re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, _sep, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def _example_inventory() -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """groups/hostvars as Ansible builds them from inventories/gb200 (YAML inventory + group_vars/all)."""
    data = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    group_vars = yaml.safe_load((INVENTORY / "group_vars" / "all.yml").read_text())
    groups: dict[str, list[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}

    def walk(name: str, node: dict[str, Any]) -> list[str]:
        hosts = list(node.get("hosts") or {})
        for host, host_vars in (node.get("hosts") or {}).items():
            hostvars.setdefault(host, dict(group_vars)).update(host_vars or {})
        for child, child_node in (node.get("children") or {}).items():
            hosts += walk(child, child_node or {})
        groups[name] = list(dict.fromkeys(hosts))
        return groups[name]

    walk("all", data["all"])
    for host_vars in hostvars.values():
        host_vars["gb200_recipe"] = "dsr1-fp8-wideep"  # the seed's recipe; the inventory's default is today's
        host_vars["gb200_migration_limit"] = 0  # the seed's workers ran without request migration
    return groups, hostvars


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return build_plan(*_example_inventory())


@pytest.mark.parametrize(
    ("marker", "head_var", "worker", "hosts"),
    [
        ("# run prefill worker", "${HEAD_PREFILL_NODE_IP}", "prefill_0", ["gb200-p0", "gb200-p1"]),
        ("4. Run the decode worker", "${HEAD_DECODE_NODE_IP}", "decode_0", ["gb200-d0", "gb200-d1"]),
    ],
)
def test_example_inventory_renders_the_seed_commands(plan: dict[str, Any], marker: str, head_var: str, worker: str, hosts: list[str]) -> None:
    seed_env, seed_argv = _seed_command(marker)
    assert seed_argv[:3] == ["python3", "-m", "dynamo.sglang"]
    head_ip = plan["hosts"][hosts[0]]["address"]
    for rank, host in enumerate(hosts):
        # The seed: "On the other ... nodes, run the same command but change --node-rank to 1".
        expected = [w.replace(head_var, head_ip) for w in seed_argv]
        expected[expected.index("--node-rank") + 1] = str(rank)
        host_plan = plan["hosts"][host]
        assert host_plan["worker"] == worker
        assert host_plan["argv"] == expected, f"{host}: argv differs from the seed (order included)"
        env = dict(host_plan["env"])
        assert env.pop("ETCD_ENDPOINTS") == "http://10.0.0.10:2379"
        assert env.pop("NATS_SERVER") == "nats://10.0.0.10:4222"
        # The seed compiles DeepGEMM by hand into a cache it points at with SGL_DG_CACHE_DIR (seed
        # 001's warning); the plan points every worker at its configuration's staged cache instead
        # (wideep.gb200.kernel_cache), spelled as this seed's SGLang reads it.
        cache = next(w["kernel_cache"] for w in plan["workers"] if w["name"] == worker)
        assert cache["env"]["SGL_DG_CACHE_DIR"] == "/wideep/kernel-cache/deep_gemm"
        assert {k: env.pop(k) for k in cache["env"]} == cache["env"]
        assert env == seed_env, f"{host}: env differs from the seed"


def test_seed_container_options(plan: dict[str, Any]) -> None:
    """docker run options of seed step 2, on every worker tray."""
    for host in ("gb200-p0", "gb200-p1", "gb200-d0", "gb200-d1"):
        (spec,) = plan["hosts"][host]["containers"]
        assert spec["gpus"] == "all"
        assert spec["network_mode"] == "host"
        assert spec["ipc_mode"] == "host"
        assert spec["shm_size"] == "10G"
        assert spec["ulimits"] == ["memlock:-1:-1", "stack:67108864:67108864", "nofile:65536:65536"]
        assert spec["capabilities"] == ["SYS_PTRACE"]
        assert spec["volumes"][0] == "/models/deepseek-ai/DeepSeek-R1:/model/:ro"
        assert spec["image"] == "dynamo-wideep-gb200:0.6.1"  # the seed's `build.sh --tag`, at the Dynamo it holds
        assert spec["working_dir"] == "/sgl-workspace/dynamo/examples/backends/sglang"


def test_seed_frontend(plan: dict[str, Any]) -> None:
    text = SEED.read_text()
    seed_frontend = shlex.split(re.search(r"^(python3 -m dynamo\.frontend[^&\n]*)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    head = plan["hosts"]["gb200-head"]
    frontend = next(c for c in head["containers"] if c["kind"] == "frontend")
    assert frontend["command"] == seed_frontend
    assert [c["kind"] for c in head["containers"]] == ["etcd", "nats", "frontend"]
    assert plan["frontend"]["url"] == "http://10.0.0.10:8000"


def test_seed_warnings_are_the_known_noops(plan: dict[str, Any]) -> None:
    """The seed sets variables that do nothing under its own engine; the plan says which."""
    found = {(w["code"], w["where"], w["variable"]) for w in plan["warnings"]}
    assert found == {
        # SGLang 0.5.3.post2 declares it in environ.py but reads only the SGL_ name.
        ("W-ENV-NOOP", "recipe dsr1-fp8-wideep (prefill)", "env.SGLANG_DISABLE_TP_MEMORY_INBALANCE_CHECK"),
        ("W-ENV-NOOP", "recipe dsr1-fp8-wideep (decode)", "env.SGLANG_HACK_SEQ_BOOTSTRAP_ROOM"),
        # MC_* act only where Mooncake runs; the decode's SGLANG_MOONCAKE_CUSTOM_MEM_POOL runs its allocator.
        ("W-ENV-MOONCAKE", "group prefill_0", "gb200_prefill_env"),
    }
    noop = next(w for w in plan["warnings"] if w["variable"] == "env.SGLANG_DISABLE_TP_MEMORY_INBALANCE_CHECK")
    assert "use SGL_DISABLE_TP_MEMORY_INBALANCE_CHECK: '1'" in noop["fix"]
