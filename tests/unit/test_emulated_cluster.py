"""emulated/cluster.py without Docker: its topology (trays, addresses, groups, ranks), the inventory it
writes, and that inventory read by Ansible itself (with inventories/emulated) and planned by the plan."""

from __future__ import annotations

import importlib.util
import ipaddress
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

from ansible_collections.wideep.gb200.plugins.plugin_utils.plan.build import build_plan

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("emulated_cluster", ROOT / "emulated" / "cluster.py")
assert _spec is not None and _spec.loader is not None
cluster = importlib.util.module_from_spec(_spec)
sys.modules["emulated_cluster"] = cluster
_spec.loader.exec_module(cluster)


def topology(*args: str) -> Any:
    return cluster.topology_from_args(cluster.parse_args(["up", *args]))


def test_the_default_cluster_is_the_seeds_deployment() -> None:
    topo = topology()
    assert [(t.host, t.ip, t.group, t.rank) for t in topo.trays()] == [
        ("tray0", "172.31.240.10", "dynamo_head", 0),
        ("tray1", "172.31.240.11", "prefill_0", 0),
        ("tray2", "172.31.240.12", "prefill_0", 1),
        ("tray3", "172.31.240.13", "decode_0", 0),
        ("tray4", "172.31.240.14", "decode_0", 1),
    ]
    tray = topo.trays()[1]
    assert (topo.network, topo.container(tray), topo.volume(tray)) == ("wideep-emu", "wideep-emu-tray1", "wideep-emu-tray1-docker")


@pytest.mark.parametrize(
    ("args", "groups"),
    [
        (
            ("--prefill-workers", "2", "--prefill-nodes", "1", "--decode-nodes", "3"),
            ["dynamo_head", "prefill_0", "prefill_1", "decode_0", "decode_0", "decode_0"],
        ),
        (("--prefill-nodes", "1", "--decode-workers", "3", "--decode-nodes", "1"), ["dynamo_head", "prefill_0", "decode_0", "decode_1", "decode_2"]),
    ],
)
def test_trays_are_numbered_head_then_prefill_then_decode_with_ranks_in_order(args: tuple[str, ...], groups: list[str]) -> None:
    trays = topology(*args).trays()
    assert [t.group for t in trays] == groups
    assert [t.index for t in trays] == list(range(len(trays)))
    for group in set(groups):
        assert [t.rank for t in trays if t.group == group] == list(range(groups.count(group)))
    addresses = [ipaddress.IPv4Address(t.ip) for t in trays]
    assert addresses == [ipaddress.IPv4Address("172.31.240.10") + i for i in range(len(trays))]


def test_a_topology_that_does_not_fit_its_subnet_is_refused() -> None:
    # a /28 is .0-.15 and the trays start at .10: five fit below the broadcast address, six do not
    assert [t.ip for t in topology("--subnet", "10.9.0.0/28").trays()][-1] == "10.9.0.14"
    with pytest.raises(cluster.ClusterError, match=r"6 trays do not fit in --subnet 10.9.0.0/28"):
        topology("--subnet", "10.9.0.0/28", "--decode-nodes", "3").trays()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--subnet", "10.9.0.0/33"), "is not an IPv4 network"),
        (("--prefill-nodes", "0"), "--prefill-nodes must be at least 1"),
        (("--decode-workers", "0"), "--decode-workers must be at least 1"),
    ],
)
def test_bad_arguments_are_refused_by_name(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(cluster.ClusterError, match=message):
        topology(*args)


def ansible_view(tmp_path: Path, topo: Any) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """(groups, hostvars) as Ansible builds them from the generated inventory plus inventories/emulated."""
    hosts_yml = tmp_path / "hosts.yml"
    hosts_yml.write_text(cluster.inventory_yaml(topo, topo.trays()))
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(hosts_yml), str(ROOT / "inventories" / "emulated")])
    variables = VariableManager(loader=loader, inventory=inventory)
    groups = {name: [host.name for host in group.get_hosts()] for name, group in inventory.groups.items()}
    hostvars = {}
    for host in inventory.get_hosts():
        found = variables.get_vars(host=host)
        # what the plan reads: the gb200_* variables (the inventory contract) and the address
        hostvars[host.name] = {k: v for k, v in found.items() if k.startswith("gb200_") or k == "ansible_host"}
    return groups, hostvars


def test_the_inventory_is_the_contracts_tree(tmp_path: Path) -> None:
    topo = topology("--prefill-workers", "2", "--decode-nodes", "3")
    data = yaml.safe_load(cluster.inventory_yaml(topo, topo.trays()))
    gb200 = data["all"]["children"]["gb200"]
    assert list(gb200["hosts"]) == [f"tray{i}" for i in range(8)]
    assert gb200["vars"]["ansible_user"] == "root" and gb200["vars"]["ansible_ssh_private_key_file"] == str(cluster.SSH_KEY)
    children = gb200["children"]
    assert list(children["dynamo_head"]["hosts"]) == ["tray0"]
    assert {name: list(group["hosts"]) for name, group in children["prefill"]["children"].items()} == {
        "prefill_0": ["tray1", "tray2"],
        "prefill_1": ["tray3", "tray4"],
    }
    assert {name: list(group["hosts"]) for name, group in children["decode"]["children"].items()} == {"decode_0": ["tray5", "tray6", "tray7"]}
    groups, hostvars = ansible_view(tmp_path, topo)
    assert groups["prefill"] == ["tray1", "tray2", "tray3", "tray4"] and groups["decode_0"] == ["tray5", "tray6", "tray7"]
    assert {h: v["ansible_host"] for h, v in hostvars.items()} == {t.host: t.ip for t in topo.trays()}
    assert hostvars["tray3"]["gb200_engine"] == "mocker"  # inventories/emulated applies to every tray


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--prefill-workers", "2", "--prefill-nodes", "1", "--decode-nodes", "3"),
        ("--decode-workers", "2", "--decode-nodes", "1"),
    ],
    ids=["seeds", "2p1-1d3", "1p2-2d1"],
)
def test_the_plan_of_the_generated_inventory_matches_the_topology(tmp_path: Path, args: tuple[str, ...]) -> None:
    topo = topology(*args)
    groups, hostvars = ansible_view(tmp_path, topo)
    plan = build_plan(groups, hostvars)
    trays = topo.trays()
    assert plan["engine"] == "mocker"
    assert plan["control_plane"]["host"] == "tray0" and plan["frontend"]["address"] == trays[0].ip
    assert plan["expected_instances"] == {"prefill": topo.prefill_workers, "decode": topo.decode_workers}
    for tray in trays:
        spec = plan["hosts"][tray.host]
        assert spec["address"] == tray.ip
        if tray.group == "dynamo_head":
            assert spec["worker"] is None
            continue
        role = tray.group.split("_")[0]
        size = sum(1 for t in trays if t.group == tray.group)
        assert (spec["worker"], spec["role"], spec["node_rank"], spec["nnodes"]) == (tray.group, role, tray.rank, size)
        # every rank runs a container: rank 0 the mocker inside the group double (TEST DOUBLE of
        # SGLang's process group), rank k a member of that group; one tray alone runs the mocker
        assert spec["launch"] is True
        group = ["python3", "/opt/wideep-emu/group_double.py"]
        if size > 1:
            assert spec["argv"][: len(group) + 4] == [*group, "--rank", str(tray.rank), "--nnodes", str(size)], spec["argv"]
        else:
            assert spec["argv"][:3] == ["python3", "-m", "dynamo.mocker"]
        if tray.rank == 0:
            assert spec["argv"][spec["argv"].index("--disaggregation-mode") + 1] == role
