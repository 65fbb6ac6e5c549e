# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What wideep.gb200.gpu_info reads, interpreted: pure functions over command output, file
text and directory trees (given as paths, so tests point them at fixtures).

The module only gathers (runs nvidia-smi, reads /proc, /sys, /dev, /etc); every rule about what
that output means lives here and is tested against a real capture (tests/unit/fixtures).
Standard library only: this file travels to the trays inside the module.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import xml.etree.ElementTree as ET
from typing import Any

# nvidia-smi prints these where a value does not apply or cannot be read.
_ABSENT = frozenset({"", "N/A", "[N/A]", "Not Supported", "[Not Supported]", "Unknown Error", "Requested functionality has been deprecated"})

# DMA-BUF registration of GPU memory by an RDMA NIC (ib_umem_dmabuf, ibv_reg_dmabuf_mr) exists from Linux 5.12.
DMABUF_MIN_KERNEL = (5, 12)
# The NVIDIA driver exports GPU memory as dma-buf only with the open kernel modules, from R515 on
# (a heuristic for when CUDA cannot be asked: CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is the real answer).
DMABUF_MIN_DRIVER_BRANCH = 515

IMEX_CHANNEL_DIR = "/dev/nvidia-caps-imex-channels"
IMEX_NODES_CONFIG = "/etc/nvidia-imex/nodes_config.cfg"


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value in _ABSENT else value


def _child_text(elem: ET.Element | None, path: str, keep_absent: bool = False) -> str | None:
    """Text of elem/path; None when missing or (unless keep_absent) 'N/A'-like."""
    if elem is None:
        return None
    found = elem.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() if keep_absent else _clean(found.text)


def _mib(value: str | None) -> int | None:
    match = re.fullmatch(r"(\d+)\s*MiB", value or "")
    return int(match.group(1)) if match else None


def _enabled(value: str | None) -> bool | None:
    if value == "Enabled":
        return True
    if value == "Disabled":
        return False
    return None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def parse_nvidia_smi_xml(text: str) -> dict[str, Any]:
    """`nvidia-smi -q -x` -> driver/CUDA versions and one entry per GPU, in nvidia-smi's order.

    The XML has no compute capability (see parse_compute_caps). Fabric values are kept as printed,
    'N/A' included: 'N/A' is what a GPU outside an NVLink fabric (any non-NVL72 system) reports.
    Raises ValueError when the text is not nvidia-smi's XML.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"nvidia-smi -q -x printed no valid XML: {exc}") from None
    if root.tag != "nvidia_smi_log":
        raise ValueError(f"nvidia-smi -q -x printed <{root.tag}>, not <nvidia_smi_log>")
    gpus: list[dict[str, Any]] = []
    for index, gpu in enumerate(root.findall("gpu")):
        fabric = gpu.find("fabric")
        gpus.append(
            {
                "index": index,
                "name": _child_text(gpu, "product_name"),
                "architecture": _child_text(gpu, "product_architecture"),
                "uuid": _child_text(gpu, "uuid"),
                "pci_bus_id": _clean(gpu.get("id")),
                "minor_number": _int(_child_text(gpu, "minor_number")),
                "memory_total_mib": _mib(_child_text(gpu, "fb_memory_usage/total")),
                "compute_capability": None,
                "persistence_mode": _enabled(_child_text(gpu, "persistence_mode")),
                "mig_mode": _child_text(gpu, "mig_mode/current_mig"),
                "ecc_mode": _child_text(gpu, "ecc_mode/current_ecc"),
                "fabric": {
                    "state": _child_text(fabric, "state", keep_absent=True),
                    "status": _child_text(fabric, "status", keep_absent=True),
                    "clique_id": _child_text(fabric, "cliqueId"),
                    "cluster_uuid": _child_text(fabric, "clusterUuid"),
                    "health": _child_text(fabric, "health/summary"),
                },
            }
        )
    return {
        "driver_version": _child_text(root, "driver_version"),
        "cuda_version": _child_text(root, "cuda_version"),
        "attached_gpus": _int(_child_text(root, "attached_gpus")),
        "gpus": gpus,
    }


COMPUTE_CAP_QUERY = ["--query-gpu=uuid,compute_cap", "--format=csv,noheader,nounits"]


def parse_compute_caps(text: str) -> dict[str, str]:
    """`nvidia-smi --query-gpu=uuid,compute_cap --format=csv,noheader,nounits` -> {uuid: "9.0"}."""
    caps: dict[str, str] = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 2 and parts[0].startswith(("GPU-", "MIG-")) and re.fullmatch(r"\d+\.\d+", parts[1]):
            caps[parts[0]] = parts[1]
    return caps


def compute_capability_tuple(value: str | None) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def kernel_module_from_license(license_text: str | None) -> str | None:
    """`modinfo -F license nvidia`: 'Dual MIT/GPL' for the open modules, 'NVIDIA' for the proprietary ones."""
    value = (license_text or "").strip()
    if not value:
        return None
    return "open" if "GPL" in value or "MIT" in value else "proprietary"


def parse_proc_devices(text: str | None, name: str) -> int | None:
    """Major number of a character device registered by a driver (/proc/devices), or None."""
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == name and parts[0].isdigit():
            return int(parts[0])
    return None


def parse_nodes_config(text: str | None) -> list[str]:
    """IMEX nodes_config.cfg: one address per line; '#' comments and blank lines ignored."""
    nodes: list[str] = []
    for line in (text or "").splitlines():
        value = line.split("#", 1)[0].strip()
        if value:
            nodes.append(value)
    return nodes


def imex_channels(directory: str = IMEX_CHANNEL_DIR) -> list[str]:
    """Names of the IMEX channel devices (channel0, ...) in directory; [] when it does not exist."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted((n for n in names if re.fullmatch(r"channel\d+", n)), key=lambda n: int(n[len("channel") :]))


def _sysfs(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _after_colon(value: str | None) -> str | None:
    """sysfs port state '4: ACTIVE' -> 'ACTIVE', phys_state '5: LinkUp' -> 'LinkUp'."""
    if value is None:
        return None
    return value.split(":", 1)[1].strip() if ":" in value else value


def read_hcas(root: str = "/sys/class/infiniband") -> list[dict[str, Any]]:
    """One entry per RDMA device port under root (/sys/class/infiniband/<dev>/ports/<n>/...)."""
    try:
        devices = sorted(os.listdir(root))
    except OSError:
        return []
    ports: list[dict[str, Any]] = []
    for device in devices:
        ports_dir = os.path.join(root, device, "ports")
        try:
            numbers = sorted(os.listdir(ports_dir), key=lambda n: int(n) if n.isdigit() else 0)
        except OSError:
            numbers = []
        fw_ver = _sysfs(os.path.join(root, device, "fw_ver"))
        for number in numbers:
            port_dir = os.path.join(ports_dir, number)
            ports.append(
                {
                    "device": device,
                    "port": int(number) if number.isdigit() else number,
                    "state": _after_colon(_sysfs(os.path.join(port_dir, "state"))),
                    "phys_state": _after_colon(_sysfs(os.path.join(port_dir, "phys_state"))),
                    "link_layer": _sysfs(os.path.join(port_dir, "link_layer")),
                    "rate": _sysfs(os.path.join(port_dir, "rate")),
                    "fw_ver": fw_ver,
                }
            )
    return ports


def module_loaded(name: str, sys_module: str = "/sys/module") -> bool:
    """A kernel module is loaded (or built in) when /sys/module/<name> exists."""
    return os.path.isdir(os.path.join(sys_module, name))


def rlimit_value(value: int) -> int | str:
    """resource.getrlimit value -> bytes, or 'unlimited' for RLIM_INFINITY (-1 on Linux)."""
    return "unlimited" if value < 0 else value


def parse_limits_memlock(files: list[tuple[str, str]]) -> list[dict[str, str]]:
    """memlock lines of pam_limits files ((path, text) in the order PAM reads them)."""
    entries: list[dict[str, str]] = []
    for path, text in files:
        for line in text.splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) == 4 and parts[2] == "memlock":
                entries.append({"file": path, "domain": parts[0], "type": parts[1], "value": parts[3]})
    return entries


def limits_files(conf: str = "/etc/security/limits.conf", conf_dir: str = "/etc/security/limits.d") -> list[tuple[str, str]]:
    """(path, text) of limits.conf then limits.d/*.conf in name order, as pam_limits reads them."""
    paths = [conf]
    with contextlib.suppress(OSError):
        paths += [os.path.join(conf_dir, n) for n in sorted(os.listdir(conf_dir)) if n.endswith(".conf")]
    out: list[tuple[str, str]] = []
    for path in paths:
        text = _sysfs(path)
        if text is not None:
            out.append((path, text))
    return out


def nearest_existing(path: str) -> str:
    """path itself when it exists, else its closest existing parent ('/' at worst)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def tree_bytes(path: str, max_entries: int = 100000) -> tuple[int, bool]:
    """Sum of regular file sizes under path (symlinks not followed) and whether every entry was counted."""
    total, seen = 0, 0
    for directory, dirs, files in os.walk(path):
        seen += len(files) + len(dirs)
        if seen > max_entries:
            return total, False
        for name in files:
            try:
                st = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(directory, name)):
                total += st.st_size
    return total, True


def disk_space(path: str) -> dict[str, Any]:
    """Free space where path is (or would be created), and what is already stored under it.

    present_bytes lets a check ask for the space still missing once weights are partly or fully there.
    """
    checked = nearest_existing(path)
    st = os.statvfs(checked)
    exists = os.path.abspath(path) == checked
    present, complete = tree_bytes(checked) if exists and os.path.isdir(checked) else (0, True)
    return {
        "path": path,
        "checked_path": checked,
        "exists": exists,
        "free_bytes": st.f_bavail * st.f_frsize,
        "total_bytes": st.f_blocks * st.f_frsize,
        "present_bytes": present,
        "present_complete": complete,
    }


def kernel_version(release: str | None) -> tuple[int, int] | None:
    """'6.8.0-1013-nvidia-64k' -> (6, 8)."""
    match = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def kernel_config_option(text: str | None, name: str) -> str | None:
    """'y', 'm' or 'n' for CONFIG_<name> in a kernel config, None when the config does not say."""
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip().strip('"')
        if line.strip() == f"# {name} is not set":
            return "n"
    return None


def read_kernel_config(release: str, boot: str = "/boot", proc_config: str = "/proc/config.gz") -> tuple[str | None, str | None]:
    """(text, path) of the running kernel's config, from /boot/config-<release> or /proc/config.gz."""
    path = os.path.join(boot, f"config-{release}")
    text = _sysfs(path)
    if text is not None:
        return text, path
    try:
        with gzip.open(proc_config, "rt", encoding="utf-8", errors="replace") as handle:
            return handle.read(), proc_config
    except OSError:
        return None, None


def assess_dmabuf(
    kernel_module: str | None,
    branch: int | None,
    release: str | None,
    dma_shared_buffer: str | None,
    cuda_dmabuf: list[bool] | None,
) -> dict[str, Any]:
    """Whether GPU memory can be registered with an RDMA NIC through DMA-BUF (instead of nvidia_peermem).

    Two sides must allow it:
      driver: CUDA's CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED on every GPU when CUDA could be asked
              (cuda_dmabuf), else the heuristic 'open kernel module, branch >= 515';
      kernel: Linux >= 5.12 (RDMA dma-buf memory regions) and CONFIG_DMA_SHARED_BUFFER not 'n'
              (a kernel config that cannot be read does not count against it).
    supported is None when neither side can be judged. What is not knowable here: whether the
    user-space rdma-core has ibv_reg_dmabuf_mr (>= v34) inside the serving image.
    """
    reasons: list[str] = []
    if cuda_dmabuf:
        driver_ok: bool | None = all(cuda_dmabuf)
        basis = "cuda"
        if not driver_ok:
            reasons.append("CUDA reports CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED=0")
    elif kernel_module is not None and branch is not None:
        driver_ok = kernel_module == "open" and branch >= DMABUF_MIN_DRIVER_BRANCH
        basis = "heuristic"
        if kernel_module != "open":
            reasons.append("the proprietary NVIDIA kernel module does not export dma-bufs (open module needed)")
        elif not driver_ok:
            reasons.append(f"driver branch {branch} < {DMABUF_MIN_DRIVER_BRANCH}")
    else:
        driver_ok, basis = None, "unknown"
        reasons.append("driver flavour and CUDA attribute unknown")
    version = kernel_version(release)
    kernel_ok: bool | None = None
    if version is None:
        reasons.append(f"kernel version unknown ({release!r})")
    else:
        kernel_ok = version >= DMABUF_MIN_KERNEL and dma_shared_buffer != "n"
        if version < DMABUF_MIN_KERNEL:
            reasons.append(f"kernel {release} < {DMABUF_MIN_KERNEL[0]}.{DMABUF_MIN_KERNEL[1]}")
        if dma_shared_buffer == "n":
            reasons.append("kernel built without CONFIG_DMA_SHARED_BUFFER")
    if driver_ok is False or kernel_ok is False:
        supported: bool | None = False
    elif driver_ok is None or kernel_ok is None:
        supported = None
    else:
        supported = True
    return {"supported": supported, "basis": basis, "driver": driver_ok, "kernel": kernel_ok, "reasons": reasons}


def normalize_pci_bus_id(bus_id: str | None) -> str | None:
    """'00000000:00:06.0' (nvidia-smi) and '0000:00:06.0' (CUDA) -> '0000:00:06.0'."""
    match = re.fullmatch(r"([0-9a-fA-F]+):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", (bus_id or "").strip())
    if not match:
        return None
    domain, bus, device, function = match.groups()
    return f"{int(domain, 16):04x}:{bus.lower()}:{device.lower()}.{function}"


def merge_gpu_details(gpus: list[dict[str, Any]], caps: dict[str, str], cuda_devices: list[dict[str, Any]]) -> None:
    """Fill compute_capability (nvidia-smi's query first, CUDA second) and dma_buf_supported per GPU."""
    by_pci = {d.get("pci_bus_id"): d for d in cuda_devices if d.get("pci_bus_id")}
    for gpu in gpus:
        cuda = by_pci.get(normalize_pci_bus_id(gpu.get("pci_bus_id")))
        uuid = gpu.get("uuid")
        gpu["compute_capability"] = caps.get(uuid) if isinstance(uuid, str) else None
        if gpu["compute_capability"] is None and cuda is not None:
            gpu["compute_capability"] = cuda.get("compute_capability")
        gpu["dma_buf_supported"] = cuda.get("dma_buf_supported") if cuda is not None else None
        gpu["fabric_handle_supported"] = cuda.get("fabric_handle_supported") if cuda is not None else None


def process_running(name: str, proc: str = "/proc") -> bool:
    """A process whose comm is name runs (works without systemd, e.g. in containers)."""
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return False
    return any(_sysfs(os.path.join(proc, pid, "comm")) == name for pid in pids)
