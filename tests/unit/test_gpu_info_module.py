"""wideep.gb200.gpu_info run by Ansible on this machine (no NVIDIA driver here): it never fails, says what is missing,
and reads a stand-in nvidia-smi that prints the real H200 capture exactly as on the GPU host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible_module import run_module

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
H200_UUID = "GPU-9d857a81-cbb1-98b4-5cf3-77d02d8eef54"


def _gpu_info(args: str, path_prefix: Path | None = None, check: bool = False) -> dict[str, Any]:
    rc, result, output = run_module("gpu_info", args, *(["--check"] if check else []), path_prefix=path_prefix)
    assert rc == 0, output
    return result


def _fake_nvidia_smi(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("#!/bin/sh\n" + body)
    fake.chmod(0o755)
    return fake


def test_without_nvidia_smi_it_reports_instead_of_failing(tmp_path: Path) -> None:
    result = _gpu_info(f"nvidia_smi_path={tmp_path}/absent disk_path={tmp_path}/models/x")
    assert result["changed"] is False
    assert result["nvidia_smi"] == "missing"
    assert result["gpus"] == []
    assert result["gpu_count"] == 0
    assert result["problems"] == [f"nvidia-smi: not found in {tmp_path}/absent: no NVIDIA driver user-space installed"]
    assert result["cuda"]["status"] == "disabled"  # no GPU listed: CUDA is not asked
    assert result["disk"]["checked_path"] == str(tmp_path)
    assert result["memlock"]["soft"] == "unlimited" or isinstance(result["memlock"]["soft"], int)
    for key in ("driver", "imex", "peermem", "dmabuf", "gdrdrv", "hcas", "kernel"):
        assert key in result


def test_failing_nvidia_smi_is_reported(tmp_path: Path) -> None:
    _fake_nvidia_smi(tmp_path, 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."\nexit 9\n')
    result = _gpu_info("cuda_probe=false", tmp_path / "bin")
    assert result["nvidia_smi"] == "failed"
    assert result["gpus"] == []
    assert result["problems"] == ["nvidia-smi -q -x failed (rc 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."]


def test_reads_the_real_h200_capture_and_stays_read_only_in_check_mode(tmp_path: Path) -> None:
    _fake_nvidia_smi(
        tmp_path,
        f'case "$*" in "-q -x") cat {FIXTURES / "nvidia-smi-q-x-h200.xml"} ;; *compute_cap*) echo "{H200_UUID}, 9.0" ;; *) exit 2 ;; esac\n',
    )
    for check in (False, True):
        result = _gpu_info("cuda_probe=false", tmp_path / "bin", check=check)
        assert result["changed"] is False
        assert result["nvidia_smi"] == "ok"
        assert result["nvidia_smi_path"] == str(tmp_path / "bin" / "nvidia-smi")
        assert result["gpu_count"] == 1
        (gpu,) = result["gpus"]
        assert (gpu["name"], gpu["uuid"], gpu["compute_capability"], gpu["memory_total_mib"]) == ("NVIDIA H200", H200_UUID, "9.0", 143771)
        assert gpu["fabric"]["state"] == "N/A"
        assert result["driver"]["version"] == "580.159.04"
        assert result["driver"]["branch"] == 580
        assert result["driver"]["cuda_version"] == "13.0"


def test_compute_capability_missing_from_nvidia_smi_is_a_problem(tmp_path: Path) -> None:
    _fake_nvidia_smi(tmp_path, f'case "$*" in "-q -x") cat {FIXTURES / "nvidia-smi-q-x-h200.xml"} ;; *) echo "Field is not valid"; exit 2 ;; esac\n')
    result = _gpu_info("cuda_probe=false", tmp_path / "bin")
    assert result["gpus"][0]["compute_capability"] is None
    assert any("compute_cap failed (rc 2)" in p for p in result["problems"])
    assert any("neither nvidia-smi's query nor CUDA" in p for p in result["problems"])
