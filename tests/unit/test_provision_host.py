"""gdrcopy (dkms status, gdrapi.h), host_limits (units), rdma (HCA port states)."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.gdrcopy import dkms_status, gdrapi_version
from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.host_limits import limits, sysctls_to_set, thp_mode
from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.rdma import hca_report, port_states

# `dkms status` from the gdrcopy molecule scenario (Debian 12, dkms 3.0.10), plus dkms 2.x lines (Ubuntu 22.04).
DKMS3 = "gdrdrv/2.5.1, 6.1.0-50-amd64, x86_64: installed\nnvidia/580.95.05, 6.1.0-50-amd64, x86_64: installed\ngdrdrv/2.4.4: added\n"
DKMS2 = (
    "gdrdrv, 2.5.1, 5.15.0-91-generic, aarch64: installed (WARNING! Diff between built and installed module!)\n"
    "gdrdrv, 2.5.1, 5.15.0-92-generic, aarch64: built\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DKMS3, {"2.5.1": {"kernels": {"6.1.0-50-amd64": "installed"}}, "2.4.4": {"kernels": {}}}),
        (DKMS2, {"2.5.1": {"kernels": {"5.15.0-91-generic": "installed", "5.15.0-92-generic": "built"}}}),
        ("", {}),
        ("Error! Could not locate dkms.conf file.\n", {}),
    ],
)
def test_dkms_status(text: str, expected: dict[str, Any]) -> None:
    assert dkms_status(text, "gdrdrv") == expected


def test_gdrapi_version() -> None:
    # include/gdrapi.h of gdrcopy v2.5.1
    header = (
        "#define GDR_API_MAJOR_VERSION    2\n"
        "#define GDR_API_MINOR_VERSION    5\n"
        "#define GDR_API_VERSION ((GDR_API_MAJOR_VERSION << 16) | GDR_API_MINOR_VERSION)\n"
    )
    assert gdrapi_version(header) == "2.5"
    with pytest.raises(ValueError, match="gdrcopy source tree"):
        gdrapi_version("int x;\n")


SEEDS = {"memlock": "unlimited", "stack": 67108864, "nofile": 65536}


def test_seed_limits_in_every_unit() -> None:
    result = limits(SEEDS)
    assert result["systemd"] == {"LimitMEMLOCK": "infinity", "LimitSTACK": "67108864", "LimitNOFILE": "65536"}
    assert result["ulimit"] == {"l": "unlimited", "s": "65536", "n": "65536"}  # ulimit -s prints KiB
    assert "*        soft memlock unlimited" in result["limits_conf"]
    assert "root     hard stack   65536" in result["limits_conf"]  # '*' does not cover root
    assert len(result["limits_conf"]) == 12


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"stack": 1000}, "not a whole number of KiB"),
        ({"nofile": 0}, "must be positive"),
        ({"nofile": "lots"}, "neither a number nor 'unlimited'"),
        ({"nofile": True}, "neither a number nor 'unlimited'"),
        ({"nproc": 10}, "unknown limit"),
    ],
)
def test_limits_refused(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        limits(values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"memlock": 8388608}, {"l": "8192"}),  # the sandbox's cap, in KiB
        ({"memlock": -1}, {"l": "unlimited"}),
        ({"nofile": "16384"}, {"n": "16384"}),
    ],
)
def test_limits_ulimit(values: dict[str, Any], expected: dict[str, str]) -> None:
    assert limits(values, ["wideep"])["ulimit"] == expected


@pytest.mark.parametrize(("text", "mode"), [("always [madvise] never\n", "madvise"), ("[always] madvise never", "always"), ("", None)])
def test_thp_mode(text: str, mode: str | None) -> None:
    assert thp_mode(text) == mode


@pytest.mark.parametrize(
    ("listing", "ok", "words"),
    [
        ("mlx5_0/1 4: ACTIVE\nmlx5_1/1 4: ACTIVE\n", True, "all 2 HCA port(s) ACTIVE: mlx5_0/1, mlx5_1/1"),
        ("mlx5_0/1 4: ACTIVE\nmlx5_1/1 1: DOWN\nmlx5_2/1 2: INIT\n", False, "2 of 3 HCA port(s) not ACTIVE: mlx5_1/1 (1: DOWN), mlx5_2/1 (2: INIT)"),
        ("", False, "no RDMA HCA port found"),
        ("mlx5_0/1\n", False, "mlx5_0/1 (no state)"),
    ],
)
def test_hca_report(listing: str, ok: bool, words: str) -> None:
    report = hca_report(port_states(listing))
    assert report["ok"] is ok
    assert words in report["message"]


@pytest.mark.parametrize(
    ("running", "expected"),
    [
        (["1048576", "0"], []),
        (["65530", "0"], ["vm.max_map_count=1048576"]),
        (["65530", "1"], ["vm.max_map_count=1048576", "kernel.numa_balancing=0"]),
    ],
)
def test_sysctls_to_set(running: list[str], expected: list[str]) -> None:
    """host_limits sets only the running values that differ (sysctl -n prints them in order)."""
    assert sysctls_to_set({"vm.max_map_count": 1048576, "kernel.numa_balancing": 0}, running) == expected


def test_sysctls_to_set_compares_multi_field_values_by_words() -> None:
    assert sysctls_to_set({"net.ipv4.tcp_rmem": "4096 131072 6291456"}, ["4096\t131072\t6291456"]) == []
    with pytest.raises(ValueError, match="printed 1 values for 2 names"):
        sysctls_to_set({"a": 1, "b": 2}, ["1"])
