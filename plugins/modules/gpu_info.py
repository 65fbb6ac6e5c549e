#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_info
short_description: Read a GPU tray's GPUs, driver, NVLink fabric, IMEX, GPUDirect RDMA, HCAs, memlock limit and disk
description:
  - Reads, and changes nothing, what serving DeepSeek-R1 across GB200 trays depends on. The role
    C(wideep.gb200.preflight) compares it with what the plan needs.
  - GPUs from C(nvidia-smi -q -x) (names, UUIDs, PCI addresses, memory, persistence and MIG mode,
    NVLink fabric state, status, clique and cluster UUID; C(N/A) off an NVLink fabric), compute
    capability from C(nvidia-smi --query-gpu=uuid,compute_cap), and the driver and CUDA versions.
  - The kernel module flavour (open or proprietary) from C(/proc/driver/nvidia/version) (O(driver_proc_dir)), else
    from C(modinfo -F license nvidia).
  - For IMEX (multi-node NVLink), the daemon binary, C(nvidia-imex-ctl), the systemd unit, a running
    C(nvidia-imex) process, C(nvidia-imex-ctl -q) (C(READY) when the daemon is ready), the channel
    devices under C(/dev/nvidia-caps-imex-channels) and the addresses in the nodes config file.
  - For GPUDirect RDMA, whether C(nvidia_peermem) and C(gdrdrv) are loaded (C(/sys/module)), C(/dev/gdrdrv), and
    whether DMA-BUF is usable (see O(cuda_probe) and the notes).
  - RDMA ports of C(/sys/class/infiniband/*/ports/*) (state, physical state, link layer, rate),
    the memlock limit of the module's own process and the memlock lines of C(/etc/security/limits.conf)
    and C(limits.d), and free space at O(disk_path).
  - Never fails because something is missing. Without C(nvidia-smi) it returns RV(nvidia_smi=missing),
    RV(gpus=[]) and says so in RV(problems).
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  nvidia_smi_path:
    description: The C(nvidia-smi) to run; default the one found in C(PATH) (and the sbin directories).
    type: path
  disk_path:
    description:
      - Report free space where this path is, or would be created (its nearest existing parent), and
        how many bytes are already stored under it (RV(disk)).
      - Omitted, RV(disk) is null.
    type: path
  cuda_probe:
    description:
      - Ask the CUDA driver (C(libcuda.so.1), through ctypes; no context is created) for every GPU's
        compute capability, DMA-BUF support and fabric-handle support. It calls C(cuInit), which can
        take seconds on GPUs without persistence mode.
      - When false or when CUDA cannot be loaded, DMA-BUF support is judged by the heuristic in the notes.
    type: bool
    default: true
  imex_nodes_config:
    description: The IMEX nodes config file (the C(IMEX_NODE_CONFIG_FILE) of C(/etc/nvidia-imex/config.cfg)).
    type: path
    default: /etc/nvidia-imex/nodes_config.cfg
  driver_proc_dir:
    description:
      - Where the loaded driver describes itself (C(version), C(params)). Only tests change it, to read a copy
        of another tray's (the preflight scenario sets it through C(module_defaults)).
    type: path
    default: /proc/driver/nvidia
  infiniband_dir:
    description: Where the RDMA ports are listed, in the layout of C(/sys/class/infiniband). Only tests change it.
    type: path
    default: /sys/class/infiniband
notes:
  - DMA-BUF heuristic. Both sides must allow it. Driver side, C(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED) on
    every GPU when O(cuda_probe) could ask CUDA, otherwise the open kernel module at branch 515 or later
    (the proprietary module never exports dma-bufs). Kernel side, Linux 5.12 or later (RDMA dma-buf memory
    regions) and C(CONFIG_DMA_SHARED_BUFFER) not disabled in C(/boot/config-RELEASE) or C(/proc/config.gz)
    (an unreadable config does not count against it). Not knowable from the host, whether the serving
    image's rdma-core has C(ibv_reg_dmabuf_mr) (v34 or later).
  - The memlock limit reported is the module process's own, which is what a session on the tray gets
    (Ansible's SSH login and sudo both apply pam_limits); the limits files are reported for the fix.
"""

EXAMPLES = r"""
- name: Read the tray
  wideep.gb200.gpu_info:
    disk_path: /models/deepseek-ai/DeepSeek-R1
  register: tray

- name: Show the GPUs
  ansible.builtin.debug:
    msg: "{{ tray.gpus | map(attribute='name') | list }} driver {{ tray.driver.version }} ({{ tray.driver.kernel_module }})"
"""

RETURN = r"""
nvidia_smi:
  description: C(ok), C(missing) (not installed) or C(failed) (it ran and failed; see RV(problems)).
  returned: always
  type: str
  sample: ok
nvidia_smi_path:
  description: The C(nvidia-smi) that ran.
  returned: always
  type: str
  sample: /usr/bin/nvidia-smi
gpu_count:
  description: Number of GPUs nvidia-smi listed.
  returned: always
  type: int
  sample: 4
gpus:
  description: One entry per GPU, in nvidia-smi's order.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: Position in nvidia-smi's list.
      type: int
    name:
      description: Product name.
      type: str
      sample: NVIDIA GB200
    architecture:
      description: Product architecture.
      type: str
      sample: Blackwell
    uuid:
      description: GPU UUID.
      type: str
    pci_bus_id:
      description: PCI address as nvidia-smi prints it.
      type: str
      sample: "00000000:00:06.0"
    minor_number:
      description: N of C(/dev/nvidiaN).
      type: int
    memory_total_mib:
      description: Framebuffer memory in MiB.
      type: int
      sample: 189471
    compute_capability:
      description: C(major.minor), from nvidia-smi's query, else from CUDA; null when neither answered.
      type: str
      sample: "10.0"
    persistence_mode:
      description: Persistence mode on.
      type: bool
    mig_mode:
      description: Current MIG mode (C(Enabled), C(Disabled)), null where not supported.
      type: str
    ecc_mode:
      description: Current ECC mode.
      type: str
    dma_buf_supported:
      description: CUDA's C(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED); null when CUDA was not asked.
      type: bool
    fabric_handle_supported:
      description: CUDA's C(CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_FABRIC_SUPPORTED); null when CUDA was not asked.
      type: bool
    fabric:
      description: NVLink fabric (MNNVL) as nvidia-smi reports it; C(N/A) off an NVLink fabric.
      type: dict
      contains:
        state:
          description: C(Completed) once the GPU has joined the fabric; C(N/A), C(Not Started), C(In Progress).
          type: str
        status:
          description: C(Success) or an error; C(N/A).
          type: str
        clique_id:
          description: NVLink clique; null when N/A.
          type: str
        cluster_uuid:
          description: NVLink cluster UUID (the NVL72 domain); null when N/A.
          type: str
        health:
          description: Fabric health summary; null when N/A.
          type: str
driver:
  description: The NVIDIA driver.
  returned: always
  type: dict
  contains:
    version:
      description: Driver version (nvidia-smi, else /proc/driver/nvidia/version).
      type: str
      sample: 580.159.04
    branch:
      description: Major version.
      type: int
      sample: 580
    cuda_version:
      description: Highest CUDA version the driver supports.
      type: str
      sample: "13.0"
    kernel_module:
      description: C(open), C(proprietary), or null when unknown.
      type: str
      sample: open
    version_file:
      description: First line of /proc/driver/nvidia/version.
      type: str
cuda:
  description: What CUDA answered (O(cuda_probe)).
  returned: always
  type: dict
  contains:
    status:
      description: C(ok), C(disabled), C(unavailable) (no libcuda) or C(error).
      type: str
    error:
      description: Why not C(ok).
      type: str
    driver_version:
      description: cuDriverGetVersion (13000 = 13.0).
      type: int
    devices:
      description: Per CUDA device, pci_bus_id, compute_capability, dma_buf_supported, fabric_handle_supported.
      type: list
      elements: dict
imex:
  description: IMEX (required for multi-node NVLink inside an NVL72 rack).
  returned: always
  type: dict
  contains:
    binary:
      description: Path of C(nvidia-imex), null when not installed.
      type: str
    ctl:
      description: Path of C(nvidia-imex-ctl), null when not installed.
      type: str
    service:
      description: C(systemctl is-active nvidia-imex) (C(active), C(inactive), C(failed), ...), null without systemctl.
      type: str
    process_running:
      description: A C(nvidia-imex) process runs.
      type: bool
    ctl_status:
      description: First line of C(nvidia-imex-ctl -q) (C(READY) when ready), null when not run.
      type: str
    channel_major:
      description: Major number of C(nvidia-caps-imex-channels) in /proc/devices (the driver supports channels).
      type: int
    channels:
      description: Channel devices present in C(/dev/nvidia-caps-imex-channels).
      type: list
      elements: str
      sample: [channel0]
    nodes_config:
      description: The nodes config file read.
      type: str
    nodes_config_exists:
      description: Whether it exists.
      type: bool
    nodes:
      description: Addresses listed in it.
      type: list
      elements: str
peermem:
  description: nvidia_peermem.
  returned: always
  type: dict
  contains:
    loaded:
      description: C(/sys/module/nvidia_peermem) exists.
      type: bool
dmabuf:
  description: Whether GPU memory can be registered with RDMA NICs through DMA-BUF (heuristic in the notes).
  returned: always
  type: dict
  contains:
    supported:
      description: True, false, or null when it cannot be judged.
      type: bool
    basis:
      description: C(cuda) (asked CUDA), C(heuristic) (driver flavour and branch) or C(unknown).
      type: str
    driver:
      description: Driver side allows it.
      type: bool
    kernel:
      description: Kernel side allows it.
      type: bool
    kernel_release:
      description: Running kernel.
      type: str
    dma_shared_buffer:
      description: C(CONFIG_DMA_SHARED_BUFFER) (C(y), C(m), C(n)); null when the kernel config is not readable.
      type: str
    kernel_config:
      description: The kernel config read; null when none was readable.
      type: str
    reasons:
      description: Why not.
      type: list
      elements: str
gdrdrv:
  description: gdrcopy's kernel module.
  returned: always
  type: dict
  contains:
    loaded:
      description: C(/sys/module/gdrdrv) exists.
      type: bool
    device:
      description: C(/dev/gdrdrv) exists.
      type: bool
hcas:
  description: One entry per RDMA device port in C(/sys/class/infiniband); empty without RDMA devices.
  returned: always
  type: list
  elements: dict
  contains:
    device:
      description: RDMA device.
      type: str
      sample: mlx5_0
    port:
      description: Port number.
      type: int
    state:
      description: Logical state (C(ACTIVE), C(DOWN), C(INIT), ...).
      type: str
    phys_state:
      description: Physical state (C(LinkUp), C(Disabled), C(Polling), ...).
      type: str
    link_layer:
      description: C(InfiniBand) or C(Ethernet).
      type: str
    rate:
      description: Rate as sysfs prints it.
      type: str
    fw_ver:
      description: Firmware version of the device.
      type: str
memlock:
  description: Locked-memory limit.
  returned: always
  type: dict
  contains:
    soft:
      description: Soft limit of the module's process, bytes or C(unlimited).
      type: raw
    hard:
      description: Hard limit, bytes or C(unlimited).
      type: raw
    configured:
      description: memlock lines of limits.conf and limits.d (file, domain, type, value).
      type: list
      elements: dict
disk:
  description: Space at O(disk_path); null when O(disk_path) is not given.
  returned: always
  type: dict
  contains:
    path:
      description: O(disk_path).
      type: str
    checked_path:
      description: The path measured (O(disk_path) or its nearest existing parent).
      type: str
    exists:
      description: Whether O(disk_path) exists.
      type: bool
    free_bytes:
      description: Bytes available to unprivileged users there.
      type: int
    total_bytes:
      description: Size of that filesystem.
      type: int
    present_bytes:
      description: Bytes of regular files already under O(disk_path).
      type: int
    present_complete:
      description: False when there were too many entries to count them all.
      type: bool
kernel:
  description: Running kernel and machine.
  returned: always
  type: dict
  sample: {release: 6.8.0-1013-nvidia-64k, machine: aarch64}
problems:
  description: What could not be read, in words (empty when everything was read).
  returned: always
  type: list
  elements: str
  sample: ["nvidia-smi: not found in PATH: no NVIDIA driver user-space installed"]
"""

import ctypes
import os
import resource
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._gpu_info import (
    COMPUTE_CAP_QUERY,
    IMEX_CHANNEL_DIR,
    assess_dmabuf,
    disk_space,
    imex_channels,
    kernel_config_option,
    kernel_module_from_license,
    limits_files,
    merge_gpu_details,
    module_loaded,
    normalize_pci_bus_id,
    parse_compute_caps,
    parse_limits_memlock,
    parse_nodes_config,
    parse_nvidia_smi_xml,
    parse_proc_devices,
    process_running,
    read_hcas,
    read_kernel_config,
    rlimit_value,
)
from ansible_collections.wideep.gb200.plugins.module_utils._nvidia_driver import PROC_DIR, driver_branch, read_driver

# CUdevice_attribute values (cuda.h).
_CU_ATTRIBUTES = (
    ("cc_major", 75),
    ("cc_minor", 76),
    ("dma_buf_supported", 124),
    ("fabric_handle_supported", 128),
)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _cuda_probe() -> dict[str, Any]:
    """Per CUDA device: PCI address, compute capability, DMA-BUF and fabric-handle support (no context)."""
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)  # see every GPU of the tray
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        return {"status": "unavailable", "error": str(exc), "driver_version": None, "devices": []}
    rc = lib.cuInit(0)
    if rc != 0:
        return {"status": "error", "error": f"cuInit returned CUresult {rc}", "driver_version": None, "devices": []}
    version = ctypes.c_int(0)
    lib.cuDriverGetVersion(ctypes.byref(version))
    count = ctypes.c_int(0)
    lib.cuDeviceGetCount(ctypes.byref(count))
    devices = []
    for ordinal in range(count.value):
        device = ctypes.c_int(0)
        if lib.cuDeviceGet(ctypes.byref(device), ordinal) != 0:
            continue
        values = {}
        for name, attribute in _CU_ATTRIBUTES:
            out = ctypes.c_int(-1)
            values[name] = out.value if lib.cuDeviceGetAttribute(ctypes.byref(out), attribute, device) == 0 else None
        bus = ctypes.create_string_buffer(32)
        pci = bus.value.decode() if lib.cuDeviceGetPCIBusId(bus, len(bus), device) == 0 else None
        cc = f"{values['cc_major']}.{values['cc_minor']}" if values["cc_major"] is not None and values["cc_minor"] is not None else None
        devices.append(
            {
                "ordinal": ordinal,
                "pci_bus_id": normalize_pci_bus_id(pci),
                "compute_capability": cc,
                "dma_buf_supported": None if values["dma_buf_supported"] is None else bool(values["dma_buf_supported"]),
                "fabric_handle_supported": None if values["fabric_handle_supported"] is None else bool(values["fabric_handle_supported"]),
            }
        )
    return {"status": "ok", "error": None, "driver_version": version.value, "devices": devices}


def _nvidia_smi(module: AnsibleModule, problems: list[str]) -> tuple[str, str | None, dict[str, Any]]:
    path = module.params["nvidia_smi_path"] or module.get_bin_path("nvidia-smi")
    if not path or not os.path.exists(path):
        where = path or "PATH"
        problems.append(f"nvidia-smi: not found in {where}: no NVIDIA driver user-space installed")
        return "missing", path, {"driver_version": None, "cuda_version": None, "gpus": []}
    rc, out, err = module.run_command([path, "-q", "-x"])
    if rc != 0:
        problems.append(f"nvidia-smi -q -x failed (rc {rc}): {_first_line(out) or _first_line(err)}")
        return "failed", path, {"driver_version": None, "cuda_version": None, "gpus": []}
    try:
        parsed = parse_nvidia_smi_xml(out)
    except ValueError as exc:
        problems.append(str(exc))
        return "failed", path, {"driver_version": None, "cuda_version": None, "gpus": []}
    rc, out, err = module.run_command([path, *COMPUTE_CAP_QUERY])
    parsed["compute_caps"] = parse_compute_caps(out) if rc == 0 else {}
    if rc != 0 and parsed["gpus"]:
        problems.append(f"nvidia-smi --query-gpu=compute_cap failed (rc {rc}): {_first_line(out) or _first_line(err)}")
    return "ok", path, parsed


def _imex(module: AnsibleModule) -> dict[str, Any]:
    ctl = module.get_bin_path("nvidia-imex-ctl")
    systemctl = module.get_bin_path("systemctl")
    service = None
    if systemctl:
        service = _first_line(module.run_command([systemctl, "is-active", "nvidia-imex"])[1]) or None
    ctl_status = None
    if ctl:
        timeout = module.get_bin_path("timeout")
        cmd = [timeout, "10", ctl, "-q"] if timeout else [ctl, "-q"]
        rc, out, err = module.run_command(cmd)
        ctl_status = _first_line(out) or _first_line(err) or f"rc {rc}"
    nodes_config = module.params["imex_nodes_config"]
    text = _read(nodes_config)
    return {
        "binary": module.get_bin_path("nvidia-imex"),
        "ctl": ctl,
        "service": service,
        "process_running": process_running("nvidia-imex"),
        "ctl_status": ctl_status,
        "channel_major": parse_proc_devices(_read("/proc/devices"), "nvidia-caps-imex-channels"),
        "channels": imex_channels(IMEX_CHANNEL_DIR),
        "nodes_config": nodes_config,
        "nodes_config_exists": text is not None,
        "nodes": parse_nodes_config(text),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi_path": {"type": "path"},
            "disk_path": {"type": "path"},
            "cuda_probe": {"type": "bool", "default": True},
            "imex_nodes_config": {"type": "path", "default": "/etc/nvidia-imex/nodes_config.cfg"},
            "driver_proc_dir": {"type": "path", "default": PROC_DIR},
            "infiniband_dir": {"type": "path", "default": "/sys/class/infiniband"},
        },
        supports_check_mode=True,
    )
    problems: list[str] = []
    status, smi_path, smi = _nvidia_smi(module, problems)

    from_file = read_driver(module.params["driver_proc_dir"])
    kernel_module = from_file["flavor"] if from_file["flavor"] in ("open", "proprietary") else None
    if kernel_module is None:
        modinfo = module.get_bin_path("modinfo")
        if modinfo:
            rc, out, err = module.run_command([modinfo, "-F", "license", "nvidia"])
            kernel_module = kernel_module_from_license(out) if rc == 0 else None
            if rc != 0 and status == "ok":
                problems.append(f"kernel module flavour unknown: no /proc/driver/nvidia/version and modinfo failed: {_first_line(err)}")
    version = smi.get("driver_version") or from_file["version"]

    cuda: dict[str, Any] = {"status": "disabled", "error": None, "driver_version": None, "devices": []}
    if module.params["cuda_probe"] and status == "ok" and smi["gpus"]:
        cuda = _cuda_probe()
    merge_gpu_details(smi["gpus"], smi.get("compute_caps", {}), cuda["devices"])
    if smi["gpus"] and any(g["compute_capability"] is None for g in smi["gpus"]):
        problems.append("compute capability: neither nvidia-smi's query nor CUDA reported it for every GPU")

    release = os.uname().release
    config_text, config_path = read_kernel_config(release)
    dma_shared_buffer = kernel_config_option(config_text, "CONFIG_DMA_SHARED_BUFFER")
    cuda_dmabuf = [g["dma_buf_supported"] for g in smi["gpus"]]
    dmabuf = assess_dmabuf(
        kernel_module,
        driver_branch(version),
        release,
        dma_shared_buffer,
        cuda_dmabuf if cuda_dmabuf and all(v is not None for v in cuda_dmabuf) else None,
    )
    dmabuf.update({"kernel_release": release, "dma_shared_buffer": dma_shared_buffer, "kernel_config": config_path})

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    disk = None
    if module.params["disk_path"]:
        try:
            disk = disk_space(module.params["disk_path"])
        except OSError as exc:
            problems.append(f"disk_path {module.params['disk_path']}: {exc}")

    module.exit_json(
        changed=False,
        nvidia_smi=status,
        nvidia_smi_path=smi_path,
        gpu_count=len(smi["gpus"]),
        gpus=smi["gpus"],
        driver={
            "version": version,
            "branch": driver_branch(version),
            "cuda_version": smi.get("cuda_version"),
            "kernel_module": kernel_module,
            "version_file": from_file["line"] or None,
        },
        cuda=cuda,
        imex=_imex(module),
        peermem={"loaded": module_loaded("nvidia_peermem")},
        dmabuf=dmabuf,
        gdrdrv={"loaded": module_loaded("gdrdrv"), "device": os.path.exists("/dev/gdrdrv")},
        hcas=read_hcas(module.params["infiniband_dir"]),
        memlock={"soft": rlimit_value(soft), "hard": rlimit_value(hard), "configured": parse_limits_memlock(limits_files())},
        disk=disk,
        kernel={"release": release, "machine": os.uname().machine},
        problems=problems,
    )


if __name__ == "__main__":
    main()
