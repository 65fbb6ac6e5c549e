"""gpu_info's parsers (plugins/module_utils/_gpu_info.py) on a real H200 capture and tables of cases."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from ansible_collections.wideep.gb200.plugins.module_utils._gpu_info import (
    assess_dmabuf,
    compute_capability_tuple,
    disk_space,
    imex_channels,
    kernel_config_option,
    kernel_module_from_license,
    kernel_version,
    merge_gpu_details,
    module_loaded,
    nearest_existing,
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

FIXTURES = Path(__file__).parent / "fixtures"
# Real: `nvidia-smi -q -x` on the device tool's H200 host (tests/device/README.md).
H200_XML = (FIXTURES / "nvidia-smi-q-x-h200.xml").read_text()
# SYNTHETIC (says so in its first comment): the H200 capture edited to look like a GB200 tray.
GB200_XML = (FIXTURES / "nvidia-smi-q-x-gb200-synthetic.xml").read_text()


def test_real_h200_capture() -> None:
    parsed = parse_nvidia_smi_xml(H200_XML)
    assert parsed["driver_version"] == "580.159.04"
    assert parsed["cuda_version"] == "13.0"
    assert parsed["attached_gpus"] == 1
    (gpu,) = parsed["gpus"]
    assert gpu == {
        "index": 0,
        "name": "NVIDIA H200",
        "architecture": "Hopper",
        "uuid": "GPU-9d857a81-cbb1-98b4-5cf3-77d02d8eef54",
        "pci_bus_id": "00000000:00:06.0",
        "minor_number": 0,
        "memory_total_mib": 143771,
        "compute_capability": None,  # not in the XML: nvidia-smi's query or CUDA fill it
        "persistence_mode": True,
        "mig_mode": "Disabled",
        "ecc_mode": "Enabled",
        # Off an NVLink fabric every fabric field is N/A; state and status keep it as printed.
        "fabric": {"state": "N/A", "status": "N/A", "clique_id": None, "cluster_uuid": None, "health": None},
    }


def test_synthetic_gb200_fixture_is_labelled_and_parses() -> None:
    assert "SYNTHETIC, NOT A CAPTURE" in GB200_XML.splitlines()[1]
    parsed = parse_nvidia_smi_xml(GB200_XML)
    assert parsed["attached_gpus"] == len(parsed["gpus"]) == 4
    assert {g["name"] for g in parsed["gpus"]} == {"NVIDIA GB200"}
    assert [g["pci_bus_id"] for g in parsed["gpus"]] == ["00000008:01:00.0", "00000009:01:00.0", "00000018:01:00.0", "00000019:01:00.0"]
    assert {(g["fabric"]["state"], g["fabric"]["status"], g["fabric"]["clique_id"]) for g in parsed["gpus"]} == {("Completed", "Success", "32766")}
    assert [g["persistence_mode"] for g in parsed["gpus"]] == [True, True, True, False]


@pytest.mark.parametrize(
    "text",
    ["", "not xml", "<other/>", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."],
)
def test_bad_xml_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="nvidia-smi -q -x printed"):
        parse_nvidia_smi_xml(text)


def test_xml_without_gpus() -> None:
    parsed = parse_nvidia_smi_xml("<nvidia_smi_log><driver_version>580.82.07</driver_version><attached_gpus>0</attached_gpus></nvidia_smi_log>")
    assert parsed == {"driver_version": "580.82.07", "cuda_version": None, "attached_gpus": 0, "gpus": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the real H200 answer (tests/device/captured/probe.txt)
        ("GPU-9d857a81-cbb1-98b4-5cf3-77d02d8eef54, 9.0\n", {"GPU-9d857a81-cbb1-98b4-5cf3-77d02d8eef54": "9.0"}),
        ("GPU-a, 10.0\nGPU-b, 10.0\n", {"GPU-a": "10.0", "GPU-b": "10.0"}),
        ("GPU-a, [N/A]\n", {}),
        ("uuid, compute_cap\n", {}),  # a header, if --format lost noheader
        ('Field "compute_cap" is not a valid field to query.\n', {}),  # old drivers
        ("", {}),
    ],
)
def test_parse_compute_caps(text: str, expected: dict[str, str]) -> None:
    assert parse_compute_caps(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("Dual MIT/GPL\n", "open"), ("NVIDIA\n", "proprietary"), ("", None), (None, None)])
def test_kernel_module_from_license(text: str | None, expected: str | None) -> None:
    assert kernel_module_from_license(text) == expected


@pytest.mark.parametrize(("value", "expected"), [("10.0", (10, 0)), ("9.0", (9, 0)), (" 12.1 ", (12, 1)), ("10", None), ("N/A", None), (None, None)])
def test_compute_capability_tuple(value: str | None, expected: tuple[int, int] | None) -> None:
    assert compute_capability_tuple(value) == expected


# /proc/devices of the real H200 host: the driver registers the IMEX channel device class even there.
H200_PROC_DEVICES = """Character devices:
195 nvidia
195 nvidiactl
238 nvidia-uvm
239 nvidia-nvswitch
240 nvidia-nvlink
241 nvidia-caps
242 nvidia-caps-imex-channels
"""


def test_parse_proc_devices() -> None:
    assert parse_proc_devices(H200_PROC_DEVICES, "nvidia-caps-imex-channels") == 242
    assert parse_proc_devices(H200_PROC_DEVICES, "gdrdrv") is None
    assert parse_proc_devices(None, "nvidia") is None


@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        ("10.0.0.1\n10.0.0.2\n", ["10.0.0.1", "10.0.0.2"]),
        ("# NVL72 rack 1\n\n10.0.0.1  # tray 1\n  10.0.0.2\n", ["10.0.0.1", "10.0.0.2"]),
        ("", []),
        (None, []),
    ],
)
def test_parse_nodes_config(text: str | None, nodes: list[str]) -> None:
    assert parse_nodes_config(text) == nodes


def test_imex_channels(tmp_path: Path) -> None:
    assert imex_channels(str(tmp_path / "absent")) == []
    for name in ("channel10", "channel0", "channel2", "README"):
        (tmp_path / name).touch()
    assert imex_channels(str(tmp_path)) == ["channel0", "channel2", "channel10"]


def _port(root: Path, device: str, port: int, state: str, phys: str, layer: str) -> None:
    port_dir = root / device / "ports" / str(port)
    port_dir.mkdir(parents=True)
    (port_dir / "state").write_text(state + "\n")
    (port_dir / "phys_state").write_text(phys + "\n")
    (port_dir / "link_layer").write_text(layer + "\n")
    (port_dir / "rate").write_text("400 Gb/sec (4X NDR)\n")
    (root / device / "fw_ver").write_text("28.43.1014\n")


def test_read_hcas(tmp_path: Path) -> None:
    # The real H200 host has an empty /sys/class/infiniband (mlx5_ib loaded, no NIC in the VM).
    assert read_hcas(str(tmp_path)) == []
    assert read_hcas(str(tmp_path / "absent")) == []
    _port(tmp_path, "mlx5_1", 1, "1: DOWN", "3: Disabled", "InfiniBand")
    _port(tmp_path, "mlx5_0", 1, "4: ACTIVE", "5: LinkUp", "InfiniBand")
    ports = read_hcas(str(tmp_path))
    assert [(p["device"], p["port"], p["state"], p["phys_state"], p["link_layer"]) for p in ports] == [
        ("mlx5_0", 1, "ACTIVE", "LinkUp", "InfiniBand"),
        ("mlx5_1", 1, "DOWN", "Disabled", "InfiniBand"),
    ]
    assert ports[0]["rate"] == "400 Gb/sec (4X NDR)"
    assert ports[0]["fw_ver"] == "28.43.1014"


def test_module_loaded(tmp_path: Path) -> None:
    (tmp_path / "nvidia").mkdir()
    assert module_loaded("nvidia", str(tmp_path))
    assert not module_loaded("nvidia_peermem", str(tmp_path))
    assert not module_loaded("gdrdrv", str(tmp_path))


@pytest.mark.parametrize(("value", "expected"), [(-1, "unlimited"), (8388608, 8388608), (0, 0)])
def test_rlimit_value(value: int, expected: int | str) -> None:
    assert rlimit_value(value) == expected


def test_parse_limits_memlock() -> None:
    files = [
        ("/etc/security/limits.conf", "# <domain> <type> <item> <value>\n*  soft  nofile  65536\n@users hard memlock 8192\n"),
        ("/etc/security/limits.d/90-rdma.conf", "*    -    memlock    unlimited  # RDMA\nroot - memlock unlimited\nbroken memlock\n"),
    ]
    assert parse_limits_memlock(files) == [
        {"file": "/etc/security/limits.conf", "domain": "@users", "type": "hard", "value": "8192"},
        {"file": "/etc/security/limits.d/90-rdma.conf", "domain": "*", "type": "-", "value": "unlimited"},
        {"file": "/etc/security/limits.d/90-rdma.conf", "domain": "root", "type": "-", "value": "unlimited"},
    ]


def test_nearest_existing_and_disk_space(tmp_path: Path) -> None:
    target = tmp_path / "models" / "deepseek-ai" / "DeepSeek-R1"
    assert nearest_existing(str(target)) == str(tmp_path)
    missing = disk_space(str(target))
    assert missing["checked_path"] == str(tmp_path)
    assert missing["exists"] is False
    assert missing["present_bytes"] == 0
    assert 0 < missing["free_bytes"] <= missing["total_bytes"]
    target.mkdir(parents=True)
    (target / "model-00001-of-00002.safetensors").write_bytes(b"x" * 1000)
    (target / "sub").mkdir()
    (target / "sub" / "config.json").write_bytes(b"y" * 24)
    os.symlink("/etc/hostname", target / "link")  # symlinks are not counted (HF cache blobs are counted once)
    present = disk_space(str(target))
    assert (present["exists"], present["checked_path"], present["present_bytes"], present["present_complete"]) == (True, str(target), 1024, True)


@pytest.mark.parametrize(("release", "expected"), [("6.18.44-fc-v657-gpu", (6, 18)), ("6.8.0-1013-nvidia-64k", (6, 8)), ("5.4.0", (5, 4)), ("", None)])
def test_kernel_version(release: str, expected: tuple[int, int] | None) -> None:
    assert kernel_version(release) == expected


def test_kernel_config(tmp_path: Path) -> None:
    text = "CONFIG_DMA_SHARED_BUFFER=y\n# CONFIG_INFINIBAND_EFA is not set\nCONFIG_MLX5_INFINIBAND=m\n"
    assert kernel_config_option(text, "CONFIG_DMA_SHARED_BUFFER") == "y"
    assert kernel_config_option(text, "CONFIG_INFINIBAND_EFA") == "n"
    assert kernel_config_option(text, "CONFIG_MLX5_INFINIBAND") == "m"
    assert kernel_config_option(text, "CONFIG_OTHER") is None
    assert kernel_config_option(None, "CONFIG_DMA_SHARED_BUFFER") is None
    boot = tmp_path / "boot"
    boot.mkdir()
    assert read_kernel_config("6.8.0", str(boot), str(tmp_path / "none.gz")) == (None, None)
    with gzip.open(tmp_path / "config.gz", "wt") as handle:
        handle.write(text)
    assert read_kernel_config("6.8.0", str(boot), str(tmp_path / "config.gz")) == (text, str(tmp_path / "config.gz"))
    (boot / "config-6.8.0").write_text("CONFIG_DMA_SHARED_BUFFER=n\n")
    assert read_kernel_config("6.8.0", str(boot), str(tmp_path / "config.gz"))[1] == str(boot / "config-6.8.0")


@pytest.mark.parametrize(
    ("args", "supported", "basis"),
    [
        # the real H200 host: open 580, kernel 6.18, CONFIG_DMA_SHARED_BUFFER=y, CUDA says 1
        (("open", 580, "6.18.44-fc-v657-gpu", "y", [True]), True, "cuda"),
        (("open", 580, "6.18.44-fc-v657-gpu", "y", None), True, "heuristic"),
        (("open", 580, "6.8.0-1013-nvidia-64k", None, None), True, "heuristic"),  # config unreadable: not held against it
        (("proprietary", 580, "6.8.0", "y", None), False, "heuristic"),
        (("open", 510, "6.8.0", "y", None), False, "heuristic"),
        (("open", 580, "5.4.0-150-generic", "y", None), False, "heuristic"),
        (("open", 580, "6.8.0", "n", None), False, "heuristic"),
        (("open", 580, "6.8.0", "y", [True, False]), False, "cuda"),  # CUDA's answer wins over the heuristic
        (("proprietary", 535, "6.8.0", "y", [True]), True, "cuda"),
        ((None, None, "6.8.0", "y", None), None, "unknown"),
        (("open", 580, "", None, None), None, "heuristic"),
    ],
)
def test_assess_dmabuf(args: tuple[str | None, int | None, str, str | None, list[bool] | None], supported: bool | None, basis: str) -> None:
    result = assess_dmabuf(*args)
    assert (result["supported"], result["basis"]) == (supported, basis)
    assert bool(result["reasons"]) == (supported is not True)


@pytest.mark.parametrize(
    ("bus_id", "expected"),
    [
        ("00000000:00:06.0", "0000:00:06.0"),
        ("0000:00:06.0", "0000:00:06.0"),
        ("00000008:01:00.0", "0008:01:00.0"),
        ("0009:1A:00.0", "0009:1a:00.0"),
        ("", None),
        (None, None),
    ],
)
def test_normalize_pci_bus_id(bus_id: str | None, expected: str | None) -> None:
    assert normalize_pci_bus_id(bus_id) == expected


def test_merge_gpu_details_prefers_nvidia_smi_and_matches_cuda_by_pci_address() -> None:
    gpus = parse_nvidia_smi_xml(GB200_XML)["gpus"]
    # CUDA enumerates in its own order; PCI addresses tie the two lists together.
    cuda = [
        {"pci_bus_id": "0009:01:00.0", "compute_capability": "10.0", "dma_buf_supported": True, "fabric_handle_supported": True},
        {"pci_bus_id": "0008:01:00.0", "compute_capability": "10.0", "dma_buf_supported": False, "fabric_handle_supported": True},
    ]
    merge_gpu_details(gpus, {"GPU-00000000-0000-0000-0000-000000000000": "10.0"}, cuda)
    assert [g["compute_capability"] for g in gpus] == ["10.0", "10.0", None, None]
    assert [g["dma_buf_supported"] for g in gpus] == [False, True, None, None]


def test_process_running(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "comm").write_text("systemd\n")
    (tmp_path / "self").mkdir()
    assert not process_running("nvidia-imex", str(tmp_path))
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "comm").write_text("nvidia-imex\n")
    assert process_running("nvidia-imex", str(tmp_path))
    assert not process_running("nvidia-imex", str(tmp_path / "absent"))
