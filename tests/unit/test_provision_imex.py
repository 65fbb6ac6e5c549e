"""imex: domains from inventory groups, nodes_config.cfg per tray, odd trays named."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.imex import (
    ImexError,
    agreed_settings,
    domain_groups,
    imex_domains,
    nodes_config,
)

GROUPS = {
    "all": ["t1", "t2", "t3", "t4", "head"],
    "gb200": ["t1", "t2", "t3", "t4"],
    "nvl72_rack1": ["t1", "t2"],
    "nvl72_rack2": ["t3", "t4"],
}
ADDR = {"t1": "10.0.0.1", "t2": "10.0.0.2", "t3": "10.0.1.3", "t4": "10.0.1.4"}
TRAYS = ["t1", "t2", "t3", "t4"]


def domains(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"groups": GROUPS, "trays": TRAYS, "names": ["nvl72_rack1", "nvl72_rack2"], "pattern": "", "addresses": ADDR}
    args.update(kw)
    return imex_domains(**args)


def test_two_racks() -> None:
    result = domains()
    assert result["trays"] == {"t1": "nvl72_rack1", "t2": "nvl72_rack1", "t3": "nvl72_rack2", "t4": "nvl72_rack2"}
    assert result["domains"]["nvl72_rack1"]["nodes"] == ["10.0.0.1", "10.0.0.2"]
    assert nodes_config(result["domains"]["nvl72_rack2"]["nodes"]) == "10.0.1.3\n10.0.1.4\n"
    assert result["addresses"] == ADDR


def test_pattern_finds_the_racks() -> None:
    assert domain_groups(GROUPS, [], "^nvl72_") == ["nvl72_rack1", "nvl72_rack2"]
    assert domains(names=[], pattern="^nvl72_")["trays"]["t3"] == "nvl72_rack2"


def test_one_group_for_one_rack() -> None:
    result = domains(names=["gb200"])
    assert result["domains"]["gb200"]["nodes"] == ["10.0.0.1", "10.0.0.2", "10.0.1.3", "10.0.1.4"]


def test_limit_still_lists_the_whole_domain() -> None:
    # --limit t1: t2 is not provisioned in this run but stays in t1's nodes_config.cfg
    assert domains(trays=["t1"])["domains"]["nvl72_rack1"]["nodes"] == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"names": ["nvl72_rack1"]}, "tray t3 is in none of the IMEX domain groups (nvl72_rack1)"),
        ({"names": ["nvl72_rack1", "nvl72_rack2", "gb200"]}, "tray t1 is in several IMEX domain groups (nvl72_rack1, gb200)"),
        ({"names": ["nvl72_rack9"], "trays": []}, "names 'nvl72_rack9', which is not a group of the inventory"),
        ({"names": [], "pattern": "^rack"}, "no IMEX domain group"),
        ({"addresses": {**ADDR, "t2": "tray2.example"}}, "tray t2 (IMEX domain nvl72_rack1): address 'tray2.example' is not an IP address"),
        ({"addresses": {**ADDR, "t2": None}}, "tray t2 (IMEX domain nvl72_rack1): address None"),
        ({"addresses": {**ADDR, "t2": "10.0.0.1"}}, "trays t1 and t2 have the same address 10.0.0.1"),
        ({"max_trays": 1}, "IMEX domain nvl72_rack1 has 2 trays; one NVLink domain holds at most 1"),
    ],
)
def test_problems(kw: dict[str, Any], words: str) -> None:
    with pytest.raises(ImexError) as err:
        domains(**kw)
    assert any(words in p for p in err.value.problems), err.value.problems


def test_every_problem_at_once() -> None:
    with pytest.raises(ImexError) as err:
        domains(names=["nvl72_rack1"], addresses={**ADDR, "t1": "x"})
    assert len(err.value.problems) == 3  # t3 and t4 in no domain, t1's address


def setting(groups: list[str], pattern: str = "", max_trays: int = 18) -> dict[str, Any]:
    return {"groups": groups, "pattern": pattern, "max_trays": max_trays}


def test_a_tray_whose_variables_give_it_other_domain_groups_is_named() -> None:
    # t2's host_vars put it in group gb200 (all trays): valid from its own view, wrong for the others.
    racks = setting(["nvl72_rack1", "nvl72_rack2"])
    with pytest.raises(ImexError) as caught:
        agreed_settings({"t1": racks, "t2": setting(["gb200"]), "t3": racks})
    (problem,) = caught.value.problems
    assert problem.startswith("the trays disagree on imex_domain_groups (t1, t3: ['nvl72_rack1', 'nvl72_rack2']; t2: ['gb200'])")
    assert "set it once, in group_vars of all the trays" in problem


def test_every_disagreeing_setting_is_reported_and_agreement_passes() -> None:
    with pytest.raises(ImexError) as caught:
        agreed_settings({"t1": setting(["r"], "", 18), "t2": setting(["r"], "^rack", 9)})
    assert [p.split(" (")[0] for p in caught.value.problems] == [
        "the trays disagree on imex_domain_group_pattern",
        "the trays disagree on imex_domain_max_trays",
    ]
    assert agreed_settings({"t1": setting(["r"]), "t2": setting(["r"])}) == setting(["r"])


def test_filter_takes_the_plans_address_then_ansible_host() -> None:
    from ansible_collections.wideep.gb200.plugins.filter.provision import FilterModule

    imex_filter = FilterModule().filters()["_imex_domains"]
    groups = {"all": ["t1", "t2"], "gb200": ["t1", "t2"]}
    one = {"__imex_settings": setting(["gb200"])}
    hostvars = {"t1": {"ansible_host": "172.16.0.1", **one}, "t2": {"ansible_host": "172.16.0.2", **one}}
    plan = {"hosts": {"t1": {"address": "10.9.0.1"}}}  # t2 not in the plan: its ansible_host is used
    result = imex_filter(groups, hostvars, plan, ["t1", "t2"])
    assert result["domains"]["gb200"]["nodes"] == ["10.9.0.1", "172.16.0.2"]
    assert imex_filter(groups, hostvars, None, ["t1"])["domains"]["gb200"]["nodes"] == ["172.16.0.1", "172.16.0.2"]
    assert result["problems"] == []
    hostvars["t2"]["__imex_settings"] = setting(["all"])
    assert imex_filter(groups, hostvars, plan, ["t1", "t2"])["problems"][0].startswith("the trays disagree on imex_domain_groups")
