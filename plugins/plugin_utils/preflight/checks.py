# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Preflight: what a tray has (wideep.gb200.gpu_info's result) against what the plan needs.

One problem per tray and issue, each naming the variable that relaxes the check and the fix.
Errors stop the run before anything is served; warnings are recommendations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..plan.problems import Problem


@dataclass(frozen=True)
class Requirements:
    """What the tray must have. 0, '' or false turns a check off (the role maps each preflight_* variable here)."""

    gpu_count: int = 0
    min_compute_capability: str = ""
    min_driver_branch: int = 0
    open_kernel_module: bool = False
    gpudirect_rdma: bool = False
    gdrdrv: bool = False
    hcas: bool = False
    imex: bool = False
    nvlink_fabric: bool = False
    memlock_unlimited: bool = False
    disk_bytes: int = 0
    address: str = ""  # this tray's plan address; IMEX's nodes_config must list it
    ignore: frozenset[str] = field(default_factory=frozenset)


# Requirement -> the role variable that sets it (named in every message).
VARIABLES = {
    "gpu_count": "preflight_gpu_count",
    "min_compute_capability": "preflight_min_compute_capability",
    "min_driver_branch": "preflight_min_driver_branch",
    "open_kernel_module": "preflight_open_kernel_module",
    "gpudirect_rdma": "preflight_gpudirect_rdma",
    "gdrdrv": "preflight_gdrdrv",
    "hcas": "preflight_hcas",
    "imex": "preflight_imex",
    "nvlink_fabric": "preflight_nvlink_fabric",
    "memlock_unlimited": "preflight_memlock_unlimited",
    "disk_bytes": "preflight_disk_bytes",
    "address": "preflight_imex_address",
    "ignore": "preflight_ignore",
}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if value is None:
        return False
    raise ValueError(f"{VARIABLES[key]}: {value!r} is not a boolean")


def _as_int(key: str, value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{VARIABLES[key]}: {value!r} is not an integer")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{VARIABLES[key]}: {value!r} is not an integer") from None
    if number < 0:
        raise ValueError(f"{VARIABLES[key]}: {value!r} is negative")
    return number


def requirements_from(data: Mapping[str, Any]) -> Requirements:
    """Requirements from the role's mapping; raises ValueError naming the variable on a bad value."""
    unknown = sorted(set(data) - set(VARIABLES))
    if unknown:
        raise ValueError(f"unknown preflight requirement(s) {unknown}; known: {sorted(VARIABLES)}")
    cc = str(data.get("min_compute_capability") or "").strip()
    if cc and compute_capability(cc) is None:
        raise ValueError(f"preflight_min_compute_capability: {cc!r} is not MAJOR.MINOR (e.g. '10.0')")
    ignore = data.get("ignore") or []
    if isinstance(ignore, str) or not isinstance(ignore, Sequence):
        raise ValueError(f"preflight_ignore: {ignore!r} is not a list of problem codes")
    return Requirements(
        gpu_count=_as_int("gpu_count", data.get("gpu_count")),
        min_compute_capability=cc,
        min_driver_branch=_as_int("min_driver_branch", data.get("min_driver_branch")),
        open_kernel_module=_as_bool("open_kernel_module", data.get("open_kernel_module")),
        gpudirect_rdma=_as_bool("gpudirect_rdma", data.get("gpudirect_rdma")),
        gdrdrv=_as_bool("gdrdrv", data.get("gdrdrv")),
        hcas=_as_bool("hcas", data.get("hcas")),
        imex=_as_bool("imex", data.get("imex")),
        nvlink_fabric=_as_bool("nvlink_fabric", data.get("nvlink_fabric")),
        memlock_unlimited=_as_bool("memlock_unlimited", data.get("memlock_unlimited")),
        disk_bytes=_as_int("disk_bytes", data.get("disk_bytes")),
        address=str(data.get("address") or ""),
        ignore=frozenset(str(code) for code in ignore),
    )


def compute_capability(value: Any) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(value)) if value is not None else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _gb(value: int) -> str:
    return f"{value / 1e9:.1f} GB"


def _gpu_label(gpu: Mapping[str, Any]) -> str:
    arch = gpu.get("architecture")
    return f"{gpu.get('name') or 'unknown GPU'}{f' ({arch})' if arch else ''}"


def _ranges(indexes: list[int]) -> str:
    return "GPU " + ",".join(str(i) for i in indexes) if len(indexes) > 1 else f"GPU {indexes[0]}"


class _Collector:
    def __init__(self, host: str, ignore: frozenset[str]) -> None:
        self.where = f"host {host}"
        self.ignore = ignore
        self.items: list[Problem] = []

    def error(self, code: str, key: str, message: str, fix: str) -> None:
        self._add(Problem("error", code, self.where, VARIABLES[key], message, fix))

    def warn(self, code: str, variable: str, message: str, fix: str) -> None:
        self._add(Problem("warning", code, self.where, variable, message, fix))

    def _add(self, problem: Problem) -> None:
        if problem.code not in self.ignore and problem not in self.items:
            self.items.append(problem)


def preflight_problems(info: Mapping[str, Any], req: Requirements, host: str) -> list[Problem]:
    """Every problem of one tray: errors first-found order, then warnings."""
    out = _Collector(host, req.ignore)
    gpus: list[Mapping[str, Any]] = list(info.get("gpus") or [])
    smi = info.get("nvidia_smi")
    gpu_checks = req.gpu_count or req.min_compute_capability or req.nvlink_fabric
    if smi != "ok" and gpu_checks:
        said = "; ".join(p for p in info.get("problems") or [] if "nvidia-smi" in p) or f"nvidia-smi {smi}"
        out.error(
            "E-NVIDIA-SMI",
            "gpu_count",
            f"cannot read the GPUs: {said}",
            "install the NVIDIA datacenter driver (open kernel modules) and its utilities, then re-run; "
            "or set preflight_gpu_count: 0, preflight_min_compute_capability: '' and preflight_nvlink_fabric: false on trays without GPUs",
        )
    else:
        _check_gpus(out, req, gpus)
        _check_fabric(out, req, gpus)
    _check_driver(out, req, info, smi)
    _check_rdma(out, req, info)
    if req.imex:
        _check_imex(out, req, info.get("imex") or {})
    _check_limits_and_disk(out, req, info)
    _recommendations(out, info, gpus, smi)
    errors = [p for p in out.items if p.severity == "error"]
    return errors + [p for p in out.items if p.severity == "warning"]


def _check_gpus(out: _Collector, req: Requirements, gpus: list[Mapping[str, Any]]) -> None:
    if req.gpu_count and len(gpus) != req.gpu_count:
        names = sorted({_gpu_label(g) for g in gpus})
        found = f"{len(gpus)} GPU{'' if len(gpus) == 1 else 's'}{': ' + ', '.join(names) if names else ''}"
        out.error(
            "E-GPU-COUNT",
            "gpu_count",
            f"GPU count {len(gpus)} != {req.gpu_count}: found {found}; the plan runs {req.gpu_count} per tray (gb200_gpus_per_node)",
            f"run on trays with {req.gpu_count} GPUs, or set gb200_gpus_per_node to {len(gpus)} for this inventory "
            "(the plan then sizes tp/dp/ep for it), or preflight_gpu_count where a different count is intended",
        )
    minimum = compute_capability(req.min_compute_capability)
    if minimum is not None and gpus:
        low: dict[str, list[int]] = {}
        unknown: list[int] = []
        for gpu in gpus:
            cc = compute_capability(gpu.get("compute_capability"))
            if cc is None:
                unknown.append(int(gpu.get("index", 0)))
            elif cc < minimum:
                low.setdefault(f"{_gpu_label(gpu)}, compute capability {cc[0]}.{cc[1]}", []).append(int(gpu.get("index", 0)))
        blackwell = "not Blackwell: " if minimum >= (10, 0) else ""
        for label, indexes in low.items():
            out.error(
                "E-GPU-ARCH",
                "min_compute_capability",
                f"{blackwell}{_ranges(indexes)} is {label} < {req.min_compute_capability} (the recipe's minimum)",
                "run this recipe on GB200 (Blackwell) trays, or lower preflight_min_compute_capability where the recipe is known to run",
            )
        if unknown:
            out.error(
                "E-GPU-ARCH",
                "min_compute_capability",
                f"{_ranges(unknown)}: compute capability unknown (neither nvidia-smi --query-gpu=compute_cap nor CUDA answered)",
                "update the driver (nvidia-smi reports compute_cap from R510 on), or set preflight_min_compute_capability: ''",
            )


def _check_driver(out: _Collector, req: Requirements, info: Mapping[str, Any], smi: Any) -> None:
    driver = info.get("driver") or {}
    branch = driver.get("branch")
    if req.min_driver_branch and smi == "ok":
        if not isinstance(branch, int):
            out.error("E-DRIVER-BRANCH", "min_driver_branch", "the NVIDIA driver version is unknown", "check nvidia-smi and /proc/driver/nvidia/version")
        elif branch < req.min_driver_branch:
            out.error(
                "E-DRIVER-BRANCH",
                "min_driver_branch",
                f"driver {driver.get('version')} (branch {branch}) < branch {req.min_driver_branch} that the recipe needs",
                f"install an NVIDIA open driver of branch {req.min_driver_branch} or later (with the matching nvidia-imex), then reboot",
            )
    if req.open_kernel_module and (smi == "ok" or driver.get("kernel_module")):
        flavour = driver.get("kernel_module")
        if flavour == "proprietary":
            out.error(
                "E-DRIVER-FLAVOUR",
                "open_kernel_module",
                f"the proprietary NVIDIA kernel module is loaded ({driver.get('version_file') or driver.get('version')}); "
                "GB200 (Blackwell) and DMA-BUF need the open kernel modules",
                "install the open flavour (nvidia-open / nvidia-driver-<branch>-open, or the .run installer's -m=kernel-open) and reboot",
            )
        elif flavour != "open":
            out.error(
                "E-DRIVER-FLAVOUR",
                "open_kernel_module",
                "cannot tell whether the NVIDIA kernel module is the open one (no /proc/driver/nvidia/version, no modinfo answer)",
                "check /proc/driver/nvidia/version ('Open Kernel Module'), or set preflight_open_kernel_module: false",
            )


def _check_rdma(out: _Collector, req: Requirements, info: Mapping[str, Any]) -> None:
    if req.gpudirect_rdma and not (info.get("peermem") or {}).get("loaded"):
        dmabuf = info.get("dmabuf") or {}
        if dmabuf.get("supported") is not True:
            why = "; ".join(dmabuf.get("reasons") or []) or "unknown"
            state = "cannot be judged" if dmabuf.get("supported") is None else "is not usable"
            out.error(
                "E-GPUDIRECT",
                "gpudirect_rdma",
                f"no GPUDirect RDMA path: nvidia_peermem is not loaded and DMA-BUF {state} ({why})",
                "use the open kernel module on Linux >= 5.12 so NICs register GPU memory through DMA-BUF (NVIDIA's recommendation), "
                "or load nvidia_peermem (modprobe nvidia_peermem, after MOFED/DOCA-OFED)",
            )
    gdr = info.get("gdrdrv") or {}
    if req.gdrdrv and not (gdr.get("loaded") and gdr.get("device")):
        checks = (("module gdrdrv not loaded (/sys/module/gdrdrv)", gdr.get("loaded")), ("/dev/gdrdrv missing", gdr.get("device")))
        missing = [what for what, ok in checks if not ok]
        out.error(
            "E-GDRDRV",
            "gdrdrv",
            f"gdrcopy's kernel driver is missing: {', '.join(missing)}",
            "install gdrcopy's gdrdrv-dkms on the host (the image carries only libgdrapi) and load it (modprobe gdrdrv)",
        )
    if req.hcas:
        ports: list[Mapping[str, Any]] = list(info.get("hcas") or [])
        described = ", ".join(f"{p.get('device')}/{p.get('port')} {p.get('state')} ({p.get('phys_state')}, {p.get('link_layer')})" for p in ports)
        active = [p for p in ports if p.get("state") == "ACTIVE"]
        if not ports:
            out.error(
                "E-HCA",
                "hcas",
                "no RDMA device (HCA): /sys/class/infiniband is empty or missing",
                "install the ConnectX/BlueField driver stack (DOCA-OFED or inbox rdma-core with mlx5_ib) and check the NICs (ibstat)",
            )
        elif not active:
            out.error("E-HCA", "hcas", f"no RDMA port is ACTIVE: {described}", "cable and bring up the ports (ibstat; the subnet manager for InfiniBand)")
        elif len(active) < len(ports):
            down = ", ".join(f"{p.get('device')}/{p.get('port')} {p.get('state')}" for p in ports if p.get("state") != "ACTIVE")
            out.warn("W-HCA-DOWN", "preflight_hcas", f"some RDMA ports are not ACTIVE: {down}", "bring them up if the deployment uses them")


def _check_imex(out: _Collector, req: Requirements, imex: Mapping[str, Any]) -> None:
    issues: list[str] = []
    if not imex.get("binary"):
        issues.append("nvidia-imex is not installed")
    if imex.get("service") != "active" and not imex.get("process_running"):
        issues.append(f"the nvidia-imex daemon is not running (systemctl is-active: {imex.get('service') or 'no systemd'})")
    status = imex.get("ctl_status")
    if status is not None and status != "READY":
        issues.append(f"nvidia-imex-ctl -q says {status!r}, not READY")
    if not imex.get("channels"):
        issues.append("no IMEX channel: /dev/nvidia-caps-imex-channels/channel0 is missing (channels are not created at boot)")
    config = imex.get("nodes_config") or "/etc/nvidia-imex/nodes_config.cfg"
    nodes = list(imex.get("nodes") or [])
    if not imex.get("nodes_config_exists"):
        issues.append(f"no {config}")
    elif not nodes:
        issues.append(f"{config} lists no tray")
    elif req.address and req.address not in nodes:
        issues.append(f"{config} does not list this tray's address {req.address} (preflight_imex_address)")
    if issues:
        out.error(
            "E-IMEX",
            "imex",
            "IMEX is not ready for multi-node NVLink: " + "; ".join(issues),
            "install nvidia-imex-<driver branch>, list every tray of the NVLink domain in nodes_config.cfg, "
            "create channel0 (NVreg_CreateImexChannel0=1 or mknod at boot) and start nvidia-imex",
        )


def _check_fabric(out: _Collector, req: Requirements, gpus: list[Mapping[str, Any]]) -> None:
    if req.nvlink_fabric and gpus:
        bad: dict[str, list[int]] = {}
        for gpu in gpus:
            fabric = gpu.get("fabric") or {}
            if fabric.get("state") != "Completed" or fabric.get("status") != "Success":
                bad.setdefault(f"state {fabric.get('state') or 'unknown'}, status {fabric.get('status') or 'unknown'}", []).append(int(gpu.get("index", 0)))
        for label, indexes in bad.items():
            out.error(
                "E-NVLINK-FABRIC",
                "nvlink_fabric",
                f"{_ranges(indexes)} has not joined an NVLink fabric ({label}; N/A means no NVLink fabric at all); "
                "multi-node NVLink needs state Completed, status Success",
                "on GB200 NVL72 check the NVLink switch trays (NMX-Controller) and the driver; elsewhere set preflight_nvlink_fabric: false",
            )


def _check_limits_and_disk(out: _Collector, req: Requirements, info: Mapping[str, Any]) -> None:
    memlock = info.get("memlock") or {}
    soft = memlock.get("soft")
    if req.memlock_unlimited and soft != "unlimited":
        configured = ", ".join(f"{e.get('file')}: {e.get('domain')} {e.get('type')} {e.get('value')}" for e in memlock.get("configured") or []) or "none"
        shown = f"{soft} bytes (ulimit -l {soft // 1024})" if isinstance(soft, int) else str(soft)
        out.error(
            "E-MEMLOCK",
            "memlock_unlimited",
            f"locked-memory limit is {shown}, not unlimited (RDMA memory registration pins GPU and host buffers); memlock lines: {configured}",
            "add '* - memlock unlimited' (and 'root - memlock unlimited') to /etc/security/limits.d/, and LimitMEMLOCK=infinity for dockerd",
        )
    disk = info.get("disk")
    if req.disk_bytes:
        if not isinstance(disk, Mapping):
            out.error("E-DISK", "disk_bytes", "free disk space was not measured (no preflight_disk_path)", "set preflight_disk_path")
        else:
            present = int(disk.get("present_bytes") or 0)
            need = max(req.disk_bytes - present, 0)
            free = int(disk.get("free_bytes") or 0)
            if free < need:
                where = disk.get("checked_path")
                shown = f"{disk.get('path')}" if where == disk.get("path") else f"{disk.get('path')} (nearest existing: {where})"
                out.error(
                    "E-DISK",
                    "disk_bytes",
                    f"{_gb(free)} free at {shown}, the weights need {_gb(req.disk_bytes)}"
                    + (f" ({_gb(present)} already there, {_gb(need)} more)" if present else ""),
                    "free space there, or point gb200_model_dir at a larger filesystem",
                )


def _recommendations(out: _Collector, info: Mapping[str, Any], gpus: list[Mapping[str, Any]], smi: Any) -> None:
    off = [int(g.get("index", 0)) for g in gpus if g.get("persistence_mode") is False]
    if off:
        out.warn(
            "W-PERSISTENCE",
            "preflight_ignore",
            f"persistence mode is off on {_ranges(off)}: every CUDA start re-initializes the GPUs (slow starts, lost fabric state)",
            "enable nvidia-persistenced (systemctl enable --now nvidia-persistenced)",
        )
    mig = [int(g.get("index", 0)) for g in gpus if g.get("mig_mode") == "Enabled"]
    if mig:
        out.warn("W-MIG", "preflight_ignore", f"MIG is enabled on {_ranges(mig)}: SGLang would see MIG slices, not whole GPUs", "nvidia-smi -mig 0, then reset")
    other = [p for p in info.get("problems") or [] if smi == "ok" or "nvidia-smi" not in p]
    if other:
        out.warn(
            "W-GPU-INFO", "preflight_ignore", "gpu_info could not read everything: " + "; ".join(other), "see the message; the checks above used what was read"
        )


def problems_as_dicts(problems: list[Problem]) -> list[dict[str, str]]:
    return [dict(p.as_dict(), line=p.render()) for p in problems]


def preflight_report(per_host: Mapping[str, list[Mapping[str, Any]] | None]) -> dict[str, Any]:
    """All trays' problems together: error and warning lines, the trays that fail and one message.

    per_host maps every tray of the play to its problems (problems_as_dicts) or None when the tray
    never got that far (unreachable, or a task failed before); such a tray is an error too.
    """
    errors: list[str] = []
    warnings: list[str] = []
    failed: list[str] = []
    for host in sorted(per_host):
        found = per_host[host]
        if found is None:
            errors.append(
                f"[E-NO-PREFLIGHT] host {host}: preflight did not run there (unreachable, or an earlier task failed). Fix: see that host's error above"
            )
            failed.append(host)
            continue
        host_errors = [str(p["line"]) for p in found if p.get("severity") == "error"]
        errors += host_errors
        warnings += [str(p["line"]) for p in found if p.get("severity") == "warning"]
        if host_errors:
            failed.append(host)
    lines = [f"preflight found {len(errors)} problem(s) on {len(failed)} of {len(per_host)} tray(s); nothing was started:"]
    lines += [f"  {i}. {line}" for i, line in enumerate(errors, 1)]
    return {"ok": not errors, "errors": errors, "warnings": warnings, "failed_hosts": failed, "message": "\n".join(lines)}
