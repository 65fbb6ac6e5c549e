"""Preflight decisions (plugins/plugin_utils/preflight/checks.py) on gpu_info's real result from the H200 host, tables of
trays that differ from it in one respect each, and the role end to end through ansible-playbook."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.filter.preflight_problems import preflight_problems as gb200_preflight_problems
from ansible_collections.wideep.gb200.plugins.filter.preflight_report import preflight_report as gb200_preflight_report
from ansible_collections.wideep.gb200.plugins.module_utils._gpu_info import merge_gpu_details, parse_nvidia_smi_xml
from ansible_collections.wideep.gb200.plugins.plugin_utils.preflight.checks import (
    Requirements,
    preflight_problems,
    preflight_report,
    problems_as_dicts,
    requirements_from,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
# Real: wideep.gb200.gpu_info's registered result on the device tool's H200 host (tests/device/README.md).
H200 = json.loads((FIXTURES / "gpu_info-h200.json").read_text())

# The plan's hardware block for dsr1-fp8-wideep and gb200_gpus_per_node 4, as the role maps it.
GB200 = {
    "gpu_count": 4,
    "min_compute_capability": "10.0",
    "min_driver_branch": 570,
    "open_kernel_module": True,
    "gpudirect_rdma": True,
    "gdrdrv": True,
    "hcas": True,
    "imex": True,
    "nvlink_fabric": True,
    "memlock_unlimited": True,
    "disk_bytes": 700000000000,
    "address": "10.0.0.11",
}
# tests/device/relaxed.yml, as the role maps it.
RELAXED = dict(GB200, gpu_count=1, min_compute_capability="9.0", imex=False, nvlink_fabric=False, hcas=False, gdrdrv=False, disk_bytes=10000000000)


def _gb200_tray() -> dict[str, Any]:
    """SYNTHETIC: the H200 result made into what a healthy GB200 tray should report (nothing here was captured on one)."""
    info = copy.deepcopy(H200)
    gpus = parse_nvidia_smi_xml((FIXTURES / "nvidia-smi-q-x-gb200-synthetic.xml").read_text())["gpus"]
    merge_gpu_details(gpus, {g["uuid"]: "10.0" for g in gpus}, [])
    for gpu in gpus:
        gpu["dma_buf_supported"] = True
        gpu["persistence_mode"] = True
    ports = [{"device": f"mlx5_{i}", "port": 1, "state": "ACTIVE", "phys_state": "LinkUp", "link_layer": "InfiniBand"} for i in range(4)]
    info.update(gpus=gpus, gpu_count=4, hcas=ports)
    info["driver"].update(version="580.82.07", branch=580)
    info["gdrdrv"] = {"loaded": True, "device": True}
    info["imex"].update(
        binary="/usr/bin/nvidia-imex",
        ctl="/usr/bin/nvidia-imex-ctl",
        service="active",
        process_running=True,
        ctl_status="READY",
        channels=["channel0"],
        nodes_config_exists=True,
        nodes=["10.0.0.10", "10.0.0.11", "10.0.0.12"],
    )
    info["disk"].update(path="/models/deepseek-ai/DeepSeek-R1", checked_path="/models", free_bytes=3 * 10**12)
    return info


def _codes(info: dict[str, Any], req: dict[str, Any], host: str = "tray") -> list[str]:
    return [p.code for p in preflight_problems(info, requirements_from(req), host)]


def test_h200_against_the_gb200_recipe() -> None:
    """What the device run printed (tests/device/captured/preflight-gb200.log): exactly what the H200 host lacks."""
    problems = preflight_problems(H200, requirements_from(GB200), "h200")
    assert [p.code for p in problems] == ["E-GPU-COUNT", "E-GPU-ARCH", "E-NVLINK-FABRIC", "E-GDRDRV", "E-HCA", "E-IMEX", "E-DISK"]
    lines = {p.code: p.render() for p in problems}
    assert lines["E-GPU-COUNT"].startswith(
        "[E-GPU-COUNT] host h200: preflight_gpu_count: GPU count 1 != 4: found 1 GPU: NVIDIA H200 (Hopper); the plan runs 4 per tray"
    )
    assert lines["E-GPU-ARCH"].startswith(
        "[E-GPU-ARCH] host h200: preflight_min_compute_capability: not Blackwell: GPU 0 is NVIDIA H200 (Hopper), compute capability 9.0 < 10.0"
    )
    assert "state N/A, status N/A" in lines["E-NVLINK-FABRIC"]
    assert "nvidia-imex is not installed" in lines["E-IMEX"]
    assert "channel0 is missing" in lines["E-IMEX"]
    assert "68.7 GB free at /models/deepseek-ai/DeepSeek-R1 (nearest existing: /), the weights need 700.0 GB" in lines["E-DISK"]
    # Present on the H200 host, so not reported: open driver 580 >= 570, DMA-BUF (CUDA says so; no peermem needed),
    # unlimited memlock, persistence mode on.
    assert all(p.severity == "error" for p in problems)


def test_h200_relaxed_for_itself_passes() -> None:
    assert _codes(H200, RELAXED) == []


def test_synthetic_gb200_tray_passes_the_gb200_recipe() -> None:
    assert _codes(_gb200_tray(), GB200) == []


LIMITS_LINE = {"file": "/etc/security/limits.conf", "domain": "*", "type": "hard", "value": "8192"}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(info: dict[str, Any]) -> None:
        keys = path.split(".")
        target = info
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value

    return change


def _all_gpus(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(info: dict[str, Any]) -> None:
        for gpu in info["gpus"]:
            gpu[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "codes", "text"),
    [
        (_set("gpus", []), ["E-GPU-COUNT"], "GPU count 0 != 4: found 0 GPUs;"),
        (_all_gpus("compute_capability", "12.0"), [], ""),  # newer than the minimum is fine
        (_set("gpus.2.compute_capability", None), ["E-GPU-ARCH"], "GPU 2: compute capability unknown"),
        (_set("driver.branch", 565), ["E-DRIVER-BRANCH"], "(branch 565) < branch 570"),
        (_set("driver.branch", None), ["E-DRIVER-BRANCH"], "driver version is unknown"),
        (_set("driver.kernel_module", "proprietary"), ["E-DRIVER-FLAVOUR"], "the proprietary NVIDIA kernel module is loaded"),
        (_set("driver.kernel_module", None), ["E-DRIVER-FLAVOUR"], "cannot tell"),
        # DMA-BUF gone: an error unless nvidia_peermem is loaded
        (_set("dmabuf", {"supported": False, "reasons": ["kernel 5.4.0 < 5.12"]}), ["E-GPUDIRECT"], "DMA-BUF is not usable (kernel 5.4.0 < 5.12)"),
        (_set("dmabuf", {"supported": None, "reasons": ["unknown"]}), ["E-GPUDIRECT"], "DMA-BUF cannot be judged"),
        (lambda i: (_set("dmabuf", {"supported": False, "reasons": []})(i), _set("peermem.loaded", True)(i)), [], ""),
        (_set("gdrdrv", {"loaded": True, "device": False}), ["E-GDRDRV"], "missing: /dev/gdrdrv missing"),
        (_set("hcas", []), ["E-HCA"], "no RDMA device"),
        (
            _set("hcas", [{"device": "mlx5_0", "port": 1, "state": "DOWN", "phys_state": "Disabled", "link_layer": "InfiniBand"}]),
            ["E-HCA"],
            "no RDMA port is ACTIVE: mlx5_0/1 DOWN (Disabled, InfiniBand)",
        ),
        (_set("hcas.3.state", "INIT"), ["W-HCA-DOWN"], "mlx5_3/1 INIT"),
        (_set("imex.ctl_status", "WAITING_FOR_PEERS"), ["E-IMEX"], "nvidia-imex-ctl -q says 'WAITING_FOR_PEERS', not READY"),
        (_set("imex.nodes", ["10.0.0.10"]), ["E-IMEX"], "does not list this tray's address 10.0.0.11"),
        (_set("imex.nodes", []), ["E-IMEX"], "lists no tray"),
        (_set("imex.channels", []), ["E-IMEX"], "channel0 is missing"),
        # systemd reports it inactive, but the daemon runs (a container, a manual start): fine
        (_set("imex.service", "inactive"), [], ""),
        (lambda i: (_set("imex.service", "failed")(i), _set("imex.process_running", False)(i)), ["E-IMEX"], "not running (systemctl is-active: failed)"),
        (_set("gpus.1.fabric", {"state": "In Progress", "status": "N/A"}), ["E-NVLINK-FABRIC"], "GPU 1 has not joined an NVLink fabric (state In Progress"),
        (_set("memlock", {"soft": 8388608, "hard": 8388608, "configured": [LIMITS_LINE]}), ["E-MEMLOCK"], "8388608 bytes (ulimit -l 8192), not unlimited"),
        (_set("disk.free_bytes", 10**11), ["E-DISK"], "100.0 GB free at /models/deepseek-ai/DeepSeek-R1 (nearest existing: /models)"),
        # weights already staged: only what is missing must fit
        (lambda i: i["disk"].update(free_bytes=20 * 10**9, present_bytes=689 * 10**9, exists=True, checked_path=i["disk"]["path"]), [], ""),
        (lambda i: i["disk"].update(free_bytes=5 * 10**9, present_bytes=600 * 10**9), ["E-DISK"], "(600.0 GB already there, 100.0 GB more)"),
        (_set("disk", None), ["E-DISK"], "not measured"),
        (_set("gpus.3.persistence_mode", False), ["W-PERSISTENCE"], "persistence mode is off on GPU 3"),
        (_set("gpus.0.mig_mode", "Enabled"), ["W-MIG"], "MIG is enabled on GPU 0"),
        (_set("problems", ["compute capability: neither nvidia-smi's query nor CUDA reported it for every GPU"]), ["W-GPU-INFO"], "could not read everything"),
    ],
)
def test_one_difference_one_problem(change: Callable[[dict[str, Any]], Any], codes: list[str], text: str) -> None:
    info = _gb200_tray()
    change(info)
    problems = preflight_problems(info, requirements_from(GB200), "tray")
    assert [p.code for p in problems] == codes
    if text:
        assert text in problems[0].render()


def test_without_nvidia_smi_one_problem_instead_of_one_per_gpu_check() -> None:
    info = _gb200_tray()
    info.update(nvidia_smi="missing", gpus=[], gpu_count=0, problems=["nvidia-smi: not found in PATH: no NVIDIA driver user-space installed"])
    info["driver"].update(version=None, branch=None)
    problems = preflight_problems(info, requirements_from(GB200), "tray")
    assert [p.code for p in problems] == ["E-NVIDIA-SMI"]
    assert "cannot read the GPUs: nvidia-smi: not found in PATH" in problems[0].render()


def test_a_tray_without_gpus_passes_with_the_hardware_checks_off() -> None:
    """What an emulated (mocker) tray gets with preflight_hardware: false, memlock and disk relaxed."""
    info = copy.deepcopy(H200)
    info.update(nvidia_smi="missing", gpus=[], gpu_count=0, problems=["nvidia-smi: not found in PATH: no NVIDIA driver user-space installed"])
    info["driver"] = {"version": None, "branch": None, "kernel_module": None, "cuda_version": None, "version_file": None}
    off = {"gpu_count": 0, "min_compute_capability": "", "min_driver_branch": 0, "open_kernel_module": False, "memlock_unlimited": False}
    assert _codes(info, off) == []


@pytest.mark.parametrize(
    ("relax", "gone"),
    [
        ({"gpu_count": 1}, "E-GPU-COUNT"),
        ({"gpu_count": 0}, "E-GPU-COUNT"),
        ({"min_compute_capability": "9.0"}, "E-GPU-ARCH"),
        ({"min_compute_capability": ""}, "E-GPU-ARCH"),
        ({"nvlink_fabric": False}, "E-NVLINK-FABRIC"),
        ({"gdrdrv": False}, "E-GDRDRV"),
        ({"hcas": False}, "E-HCA"),
        ({"imex": False}, "E-IMEX"),
        ({"disk_bytes": 0}, "E-DISK"),
        ({"disk_bytes": 60 * 10**9}, "E-DISK"),
        ({"ignore": ["E-IMEX"]}, "E-IMEX"),
    ],
)
def test_each_check_is_relaxed_by_its_variable(relax: dict[str, Any], gone: str) -> None:
    before = _codes(H200, GB200)
    after = _codes(H200, dict(GB200, **relax))
    assert gone in before
    assert after == [code for code in before if code != gone]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"gpus": 4}, "unknown preflight requirement(s) ['gpus']"),
        ({"min_compute_capability": "blackwell"}, "preflight_min_compute_capability: 'blackwell' is not MAJOR.MINOR"),
        ({"gpu_count": "four"}, "preflight_gpu_count: 'four' is not an integer"),
        ({"gpu_count": -1}, "preflight_gpu_count: -1 is negative"),
        ({"disk_bytes": True}, "preflight_disk_bytes: True is not an integer"),
        ({"imex": "maybe"}, "preflight_imex: 'maybe' is not a boolean"),
        ({"ignore": "E-IMEX"}, "preflight_ignore: 'E-IMEX' is not a list"),
    ],
)
def test_bad_requirements_name_the_variable(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        requirements_from(data)


def test_requirements_from_strings_and_defaults() -> None:
    req = requirements_from({"gpu_count": "4", "imex": "true", "hcas": "False", "disk_bytes": "", "min_driver_branch": None})
    assert req == Requirements(gpu_count=4, imex=True)


def test_report_puts_every_tray_in_one_message() -> None:
    found = {
        "tray-b": problems_as_dicts(preflight_problems(H200, requirements_from(GB200), "tray-b")),
        "tray-a": problems_as_dicts(preflight_problems(_gb200_tray(), requirements_from(dict(GB200, memlock_unlimited=True)), "tray-a")),
        "tray-c": None,  # unreachable
    }
    report = preflight_report(found)
    assert not report["ok"]
    assert report["failed_hosts"] == ["tray-b", "tray-c"]
    lines = report["message"].splitlines()
    assert lines[0] == "preflight found 8 problem(s) on 2 of 3 tray(s); nothing was started:"
    assert lines[1].startswith("  1. [E-GPU-COUNT] host tray-b: ")
    assert lines[-1].startswith("  8. [E-NO-PREFLIGHT] host tray-c: preflight did not run there")
    assert preflight_report({"tray-a": found["tray-a"]}) == {
        "ok": True,
        "errors": [],
        "warnings": [],
        "failed_hosts": [],
        "message": "preflight found 0 problem(s) on 0 of 1 tray(s); nothing was started:",
    }


def test_filters() -> None:
    found = gb200_preflight_problems(H200, RELAXED, "h200")
    assert found == []
    found = gb200_preflight_problems(H200, GB200, "h200")
    assert found[0]["code"] == "E-GPU-COUNT"
    assert found[0]["line"].startswith("[E-GPU-COUNT] host h200: preflight_gpu_count: ")
    with pytest.raises(AnsibleFilterError, match=r"not a wideep\.gb200\.gpu_info result"):
        gb200_preflight_problems({"msg": "failed"}, GB200, "h200")
    with pytest.raises(AnsibleFilterError, match="preflight_gpu_count"):
        gb200_preflight_problems(H200, dict(GB200, gpu_count="x"), "h200")
    report = gb200_preflight_report(["h200", "gone"], {"h200": {"preflight_found": found}, "gone": {}})
    assert report["failed_hosts"] == ["gone", "h200"]


# The role end to end on this machine: the device playbook with a stand-in nvidia-smi that prints the real H200
# capture. This machine has no NVIDIA driver, so what only the driver answers (flavour, DMA-BUF) is relaxed too.
LOCAL = '{"preflight_open_kernel_module": false, "preflight_gpudirect_rdma": false, "preflight_memlock_unlimited": false}'


def _playbook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        "#!/bin/sh\n"
        f'case "$*" in "-q -x") cat {FIXTURES / "nvidia-smi-q-x-h200.xml"} ;; '
        '*compute_cap*) echo "GPU-9d857a81-cbb1-98b4-5cf3-77d02d8eef54, 9.0" ;; *) exit 2 ;; esac\n'
    )
    fake.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{fake.parent}:{os.environ['PATH']}",
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "tests/device/inventory.yml", "tests/device/preflight.yml", "-e", LOCAL, *args]
    return subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT)


def test_role_fails_once_listing_every_tray_then_passes_relaxed_also_in_check_mode(tmp_path: Path) -> None:
    failed = _playbook(tmp_path)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    out = failed.stdout + failed.stderr
    assert "preflight found 14 problem(s) on 2 of 2 tray(s); nothing was started:" in out
    for host in ("h200", "h200-decode"):
        assert f"[E-GPU-ARCH] host {host}: preflight_min_compute_capability: not Blackwell: GPU 0 is NVIDIA H200 (Hopper), compute capability 9.0 < 10.0" in out
        assert f"[E-GPU-COUNT] host {host}: preflight_gpu_count: GPU count 1 != 4" in out
    assert "changed=0" in out  # gpu_info and the checks change nothing
    for extra in ([], ["--check"]):
        passed = _playbook(tmp_path, "-e", "@tests/device/relaxed.yml", *extra)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "preflight: 2 tray(s) have what the plan needs (0 warning(s))" in passed.stdout
        assert "changed=0" in passed.stdout


def test_role_on_trays_without_gpus_passes_with_preflight_hardware_false(tmp_path: Path) -> None:
    """The settings an emulated (mocker) cluster needs: no nvidia-smi at all, memlock capped, no weights."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")
    emulated = '{"preflight_hardware": false, "preflight_memlock_unlimited": false, "preflight_disk_bytes": 0, "preflight_nvidia_smi_path": "%s"}'
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        *("-i", "tests/device/inventory.yml", "tests/device/preflight.yml", "-e", emulated % (tmp_path / "no-nvidia-smi")),
    ]
    done = subprocess.run(command, env=env, text=True, capture_output=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "preflight: 2 tray(s) have what the plan needs (0 warning(s))" in done.stdout


def test_preflight_argument_spec_matches_the_defaults() -> None:
    defaults = yaml.safe_load((ROOT / "roles/preflight/defaults/main.yml").read_text())
    options = yaml.safe_load((ROOT / "roles/preflight/meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    for name, spec in options.items():
        if "default" in spec:  # literal defaults are stated in both; templated ones (from gb200_plan) only in defaults
            assert spec["default"] == defaults[name], name
        else:
            assert "{{" in str(defaults[name]), name
