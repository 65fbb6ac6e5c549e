"""What wideep.gb200.provision (the first part of site.yml) left on the converged emulated trays.

Ordered first (test_00_*): they read the trays before the serving tests re-run and tear down.
The trays are containers, so inventories/emulated switches off what only a kernel or init
system does (`<role>_manage_system: false`), active HCAs, NVIDIA's repositories and gdrcopy
(gb200_provision_skip); what the roles still do is checked here on the real artifacts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from cluster_helpers import ROOT, Tray, run_playbook

pytestmark = pytest.mark.cluster

LIBDIR = "/usr/lib/x86_64-linux-gnu"  # the trays are x86_64 (rdma: /usr/lib/$(uname -m)-linux-gnu)


def role_var(inventory: dict[str, Any], host: str, name: str) -> Any:
    """NAME for HOST: the inventory's value (inventories/emulated), else the role's default."""
    hostvars = inventory["_meta"]["hostvars"][host]
    if name in hostvars:
        return hostvars[name]
    role = next(r for r in ("host_limits", "gpu_driver", "imex", "rdma", "container_runtime") if name.startswith(r + "_"))
    return yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text())[name]


def nvidia_options(tray: Tray) -> dict[str, str]:
    """NAME=VALUE of every `options nvidia` line in /etc/modprobe.d, as modprobe would merge them."""
    text = tray.host.check_output("cat /etc/modprobe.d/*.conf")
    lines = [line.split(None, 2) for line in text.splitlines()]
    return {
        name: value
        for words in lines
        if len(words) == 3 and words[:2] == ["options", "nvidia"]
        for name, value in re.findall(r'(\S+?)=("[^"]*"|\S+)', words[2])
    }


def test_rdma_user_space_and_the_libmlx5_link(trays: dict[str, Tray]) -> None:
    for tray in trays.values():
        for package in ("rdma-core", "ibverbs-providers", "ibverbs-utils"):
            assert tray.host.package(package).is_installed, f"{tray.name}: {package} not installed"
        link = tray.host.file(f"{LIBDIR}/libmlx5.so")
        assert link.is_symlink, f"{tray.name}: {LIBDIR}/libmlx5.so is not a link"
        target = tray.host.check_output(f"readlink {LIBDIR}/libmlx5.so")
        assert target == "libmlx5.so.1", f"{tray.name}: libmlx5.so -> {target}"
        assert tray.host.file(f"{LIBDIR}/libmlx5.so.1").exists  # the link resolves


def test_login_sessions_get_the_configured_limits(inventory: dict[str, Any], trays: dict[str, Tray]) -> None:
    # An SSH session goes through pam_limits, which reads the role's limits.d file; the container's
    # own defaults (stack 8 MiB, nofile 20000) differ from every value below.
    for tray in trays.values():
        memlock, stack, nofile = (role_var(inventory, tray.name, f"host_limits_{name}") for name in ("memlock", "stack", "nofile"))
        seen = tray.host.check_output("ulimit -Sl; ulimit -Hl; ulimit -Ss; ulimit -Hs; ulimit -Sn; ulimit -Hn").split()
        assert seen == [str(memlock // 1024)] * 2 + [str(stack // 1024)] * 2 + [str(nofile)] * 2, f"{tray.name}: {seen}"


def test_kernel_settings_are_persisted(inventory: dict[str, Any], trays: dict[str, Tray]) -> None:
    for tray in trays.values():
        wanted = role_var(inventory, tray.name, "host_limits_sysctls")
        sysctl_file = tray.host.file("/etc/sysctl.d/90-wideep-gb200.conf").content_string
        written = {
            key.strip(): value.strip() for key, sep, value in (line.partition("=") for line in sysctl_file.splitlines()) if sep and not key.startswith("#")
        }
        assert written == {key: str(value) for key, value in wanted.items()}, f"{tray.name}: {sysctl_file}"
        thp = tray.host.file("/etc/tmpfiles.d/wideep-gb200-thp.conf").content_string
        assert re.search(r"^w\s+/sys/kernel/mm/transparent_hugepage/enabled\s.*\smadvise$", thp, re.MULTILINE), f"{tray.name}: {thp}"
        dropin = tray.host.file("/etc/systemd/system/docker.service.d/90-wideep-gb200-limits.conf").content_string
        limits = {name: role_var(inventory, tray.name, f"host_limits_{name}") for name in ("memlock", "stack")}
        for line in (f"LimitMEMLOCK={limits['memlock']}", f"LimitSTACK={limits['stack']}"):
            assert line in dropin.splitlines(), f"{tray.name}: {line} not in {dropin}"


def test_driver_and_imex_module_options(trays: dict[str, Tray]) -> None:
    for tray in trays.values():
        assert nvidia_options(tray) == {
            "NVreg_EnableStreamMemOPs": "1",
            "NVreg_RegistryDwords": '"PeerMappingOverride=1;"',
            "NVreg_CreateImexChannel0": "1",
        }, tray.name


def test_daemon_json_gets_the_nvidia_runtime_and_the_tray_docker_still_answers(trays: dict[str, Tray]) -> None:
    for tray in trays.values():
        daemon = json.loads(tray.host.file("/etc/docker/daemon.json").content_string)
        assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime", f"{tray.name}: {daemon}"
        assert "default-runtime" not in daemon  # container_runtime_nvidia_default_runtime: false
        assert tray.docker("info", "--format", "{{.ServerVersion}}").strip()


def test_every_tray_lists_the_same_imex_domain(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    # inventories/emulated keeps imex_domain_groups: [gb200], so the domain is every tray.
    expected = sorted(spec["address"] for spec in plan["hosts"].values())
    configs = {tray.name: tray.host.file("/etc/nvidia-imex/nodes_config.cfg").content_string for tray in trays.values()}
    assert len(set(configs.values())) == 1, configs
    listed = [line.strip() for line in next(iter(configs.values())).splitlines() if line.strip() and not line.startswith("#")]
    assert sorted(listed) == expected and len(listed) == len(trays)


def test_an_unknown_role_in_gb200_provision_skip_is_refused_before_any_change() -> None:
    run = run_playbook("provision", "-e", '{"gb200_provision_skip": ["gdrcopy", "infiniband"]}')
    assert run.rc != 0, run.describe()
    roles = "rdma, gpu_driver, gdrcopy, host_limits, container_runtime, imex"
    assert f"tray1: gb200_provision_skip must be a list of these roles ({roles})" in run.output, run.describe()
    assert 'got ["gdrcopy", "infiniband"]; not roles: infiniband' in run.output, run.describe()
    assert all(counters["changed"] == 0 for counters in run.recap.values()), run.describe()
