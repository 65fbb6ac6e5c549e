"""The one reader of /proc/driver/nvidia (plugins/module_utils/_nvidia_driver.py): gpu_info, the
nvidia_driver_info module (the gpu_driver and imex roles) and the roles' modprobe options use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_module import run_module, run_module_file

from ansible_collections.wideep.gb200.plugins.module_utils._nvidia_driver import (
    check_driver,
    driver_branch,
    modprobe_options,
    parse_params,
    parse_version,
    pending_params,
    read_driver,
)

# Captured on the device tool's H200 host (Ubuntu 24.04, open driver 580.159.04):
# `cat /proc/driver/nvidia/version` and an excerpt of `cat /proc/driver/nvidia/params`.
H200_VERSION = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  \nGCC version:  gcc version 15.3.0 (GCC) \n"
H200_PARAMS = """ResmanDebugLevel: 4294967295
EnableStreamMemOPs: 0
NvLinkDisable: 1
ImexChannelCount: 2048
CreateImexChannel0: 0
CoherentGPUMemoryMode: ""
RegistryDwords: ""
RegistryDwordsPerDevice: ""
"""
# The same lines in the formats NVIDIA documents for other builds (not captured here).
GRACE_570 = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  570.124.06  Release Build  (dvs-builder@U16-I1-N07-12-3)  Fri Feb 28 2025\n"
PROPRIETARY_550 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc version 12.3.0\n"
PROPRIETARY_535 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
PROPRIETARY_ARM_535 = "NVRM version: NVIDIA UNIX Kernel Module for aarch64  535.129.03  Release Build  (dvs-builder@U16-T02-35-3)\n"


@pytest.mark.parametrize(
    ("text", "flavor", "version", "branch", "arch"),
    [
        (H200_VERSION, "open", "580.159.04", 580, "x86_64"),
        (GRACE_570, "open", "570.124.06", 570, "aarch64"),
        (PROPRIETARY_550, "proprietary", "550.54.15", 550, "x86_64"),
        (PROPRIETARY_535, "proprietary", "535.104.05", 535, "x86_64"),
        (PROPRIETARY_ARM_535, "proprietary", "535.129.03", 535, "aarch64"),
    ],
)
def test_version_lines(text: str, flavor: str, version: str, branch: int, arch: str) -> None:
    info = parse_version(text)
    assert (info["present"], info["flavor"], info["version"], info["branch"], info["arch"]) == (True, flavor, version, branch, arch)
    assert info["line"] == text.splitlines()[0].strip()


def test_an_unrecognised_file_is_present_but_unknown() -> None:
    info = parse_version("NVRM version: something new  600.1\n")
    assert (info["present"], info["flavor"], info["version"], info["branch"]) == (True, "unknown", None, None)
    assert info["line"] == "NVRM version: something new  600.1"


@pytest.mark.parametrize(("version", "branch"), [("580.159.04", 580), ("570.86.15", 570), ("550", None), ("", None), (None, None)])
def test_driver_branch(version: str | None, branch: int | None) -> None:
    assert driver_branch(version) == branch


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_no_driver(text: str | None) -> None:
    assert parse_version(text)["present"] is False


@pytest.mark.parametrize(
    ("text", "min_branch", "state", "words"),
    [
        (H200_VERSION, 570, "ok", "open kernel module 580.159.04 (branch 580 >= 570)"),
        (H200_VERSION, 580, "ok", "branch 580 >= 580"),
        (H200_VERSION, 590, "too_old", "branch 580, older than the required branch 590"),
        (GRACE_570, 575, "too_old", "open driver 570.124.06"),
        (PROPRIETARY_550, 550, "proprietary", "proprietary kernel module"),
        ("", 570, "absent", "no NVIDIA kernel driver is loaded"),
        ("garbage\n", 570, "unknown", "cannot read the driver version"),
    ],
)
def test_check(text: str, min_branch: int, state: str, words: str) -> None:
    result = check_driver(parse_version(text), min_branch)
    assert result["state"] == state
    assert result["ok"] is (state == "ok")
    assert words in result["message"]


def test_params_are_unquoted() -> None:
    params = parse_params(H200_PARAMS)
    assert params["EnableStreamMemOPs"] == "0"
    assert params["RegistryDwords"] == ""
    assert params["CreateImexChannel0"] == "0"


DEEPEP: dict[str, Any] = {"EnableStreamMemOPs": 1, "RegistryDwords": "PeerMappingOverride=1;"}


@pytest.mark.parametrize(
    ("module", "options", "line"),
    [
        # DeepEP third-party/README.md, verbatim
        ("nvidia", DEEPEP, 'options nvidia NVreg_EnableStreamMemOPs=1 NVreg_RegistryDwords="PeerMappingOverride=1;"'),
        ("nvidia", {"CreateImexChannel0": 1}, "options nvidia NVreg_CreateImexChannel0=1"),
        ("nvidia", {"CreateImexChannel0": True}, "options nvidia NVreg_CreateImexChannel0=1"),
        ("nvidia", {"RegistryDwords": ""}, 'options nvidia NVreg_RegistryDwords=""'),
    ],
)
def test_modprobe_options(module: str, options: dict[str, Any], line: str) -> None:
    assert modprobe_options(module, options) == line


@pytest.mark.parametrize("options", [{}, {"RegistryDwords": 'a"b'}])
def test_modprobe_options_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="modprobe_options"):
        modprobe_options("nvidia", options)


def test_pending_params_on_the_h200() -> None:
    # The H200 runs without the DeepEP options: both need a reload, named with live and wanted value.
    assert pending_params(parse_params(H200_PARAMS), DEEPEP) == [
        "EnableStreamMemOPs: loaded '0', configured '1'",
        "RegistryDwords: loaded '', configured 'PeerMappingOverride=1;'",
    ]


def test_pending_params_after_reboot() -> None:
    live = parse_params('EnableStreamMemOPs: 1\nRegistryDwords: "PeerMappingOverride=1;"\nCreateImexChannel0: 1\n')
    assert pending_params(live, {**DEEPEP, "CreateImexChannel0": 1}) == []


def test_pending_params_unknown_and_unloaded() -> None:
    assert pending_params(parse_params(H200_PARAMS), {"NoSuchThing": 1}) == ["NoSuchThing: the loaded driver has no such parameter (wanted '1')"]
    assert pending_params({}, DEEPEP) == []  # no driver loaded: nothing runs with old values


def write_proc(root: Path, version: str | None, params: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if version is not None:
        (root / "version").write_text(version)
    if params is not None:
        (root / "params").write_text(params)
    return root


def test_read_driver_reads_both_files(tmp_path: Path) -> None:
    info = read_driver(str(write_proc(tmp_path / "nvidia", H200_VERSION, H200_PARAMS)))
    assert (info["flavor"], info["version"], info["params"]["CreateImexChannel0"]) == ("open", "580.159.04", "0")
    absent = read_driver(str(tmp_path / "none"))
    assert (absent["present"], absent["params"]) == (False, {})


def driver_info(proc: Path, **args: Any) -> dict[str, Any]:
    """The action's answer (its shell read of the two files, judged on the controller), checked
    against the module's own answer on the same files."""
    rc, result, output = run_module("nvidia_driver_info", json.dumps({"proc_dir": str(proc), **args}))
    assert rc == 0, output
    assert result["changed"] is False
    assert "invocation" not in result, "the action ran the module instead of its shell read"
    module = run_module_file("nvidia_driver_info", {"proc_dir": str(proc), **args}, proc.parent)
    bookkeeping = {"invocation", "action", "_ansible_no_log"}
    assert {k: v for k, v in result.items() if k not in bookkeeping} == {k: v for k, v in module.items() if k not in bookkeeping}
    return result


def test_nvidia_driver_info_judges_the_h200s_driver(tmp_path: Path) -> None:
    result = driver_info(write_proc(tmp_path / "nvidia", H200_VERSION, H200_PARAMS), min_branch=570, module_options=DEEPEP)
    assert (result["present"], result["flavor"], result["version"], result["branch"], result["arch"]) == (True, "open", "580.159.04", 580, "x86_64")
    assert result["check"] == {"ok": True, "state": "ok", "message": "open kernel module 580.159.04 (branch 580 >= 570)"}
    assert result["pending"] == pending_params(parse_params(H200_PARAMS), DEEPEP)
    assert result["params"]["EnableStreamMemOPs"] == "0"


def test_nvidia_driver_info_without_a_driver(tmp_path: Path) -> None:
    result = driver_info(tmp_path / "absent", min_branch=570, module_options=DEEPEP)
    assert result["present"] is False and result["check"]["state"] == "absent" and result["pending"] == []
    assert str(tmp_path / "absent" / "version") in result["check"]["message"]


def test_nvidia_driver_info_without_a_minimum_checks_only_the_flavour(tmp_path: Path) -> None:
    result = driver_info(write_proc(tmp_path / "nvidia", PROPRIETARY_550, ""))
    assert result["check"]["state"] == "proprietary" and result["pending"] == []
