# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""PRIVATE filters of the provisioning roles (names start with _): thin adapters over plugins/plugin_utils/_provision_*.py.

Not for playbooks outside this collection; they may change at any time. The filters a user calls are
documented one per file (cuda_apt_repo, preflight_problems, preflight_report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.module_utils import _nvidia_driver as driver
from ansible_collections.wideep.gb200.plugins.plugin_utils.provision import apt, gdrcopy, host_limits, imex, rdma
from ansible_collections.wideep.gb200.plugins.plugin_utils.provision import container_runtime as docker


def nvidia_modprobe_options(options: Mapping[str, Any], module: str = "nvidia") -> str:
    """{EnableStreamMemOPs: 1} | wideep.gb200._nvidia_modprobe_options: an `options nvidia NVreg_...` line."""
    try:
        return driver.modprobe_options(module, options)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def nvidia_toolkit_apt_repo(architecture: str) -> dict[str, str]:
    """ansible_facts['architecture'] | wideep.gb200._nvidia_toolkit_apt_repo: {arch, url, key_url}."""
    try:
        return apt.toolkit_repo(str(architecture))
    except apt.RepoError as exc:
        raise AnsibleFilterError(f"nvidia_toolkit_apt_repo: {exc}") from None


def multiarch_libdir(architecture: str) -> str:
    """ansible_facts['architecture'] | wideep.gb200._multiarch_libdir: /usr/lib/x86_64-linux-gnu or /usr/lib/aarch64-linux-gnu."""
    try:
        return apt.multiarch_libdir(str(architecture))
    except apt.RepoError as exc:
        raise AnsibleFilterError(f"_multiarch_libdir: {exc}") from None


def deb822_source(uris: str | Sequence[str], signed_by: str, suites: str | Sequence[str] = "/", components: Sequence[str] = (), comment: str = "") -> str:
    """url | wideep.gb200._deb822_source(signed_by, ...): the text of a .sources file."""
    try:
        return apt.deb822_source(uris, signed_by, suites, components, comment)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def version_glob(package: str, version: str) -> str:
    """nvidia-container-toolkit | wideep.gb200._version_glob("1.18.1"): nvidia-container-toolkit=1.18.1-* ("" = any version)."""
    return apt.version_glob(str(package), str(version or ""))


def imex_package(driver_version: str) -> str:
    """driver version | wideep.gb200._imex_package: the apt spec of the matching nvidia-imex."""
    try:
        return apt.imex_package(str(driver_version))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def docker_daemon_json(
    existing_text: str | None,
    mode: str,
    default_runtime: bool = False,
    runtime_path: str = "nvidia-container-runtime",
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """current daemon.json text | wideep.gb200._docker_daemon_json(mode, ...): {config, content, changed}."""
    try:
        return docker.daemon_json(existing_text, mode, bool(default_runtime), runtime_path, dict(options or {}))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _address(host: str, hostvars: Mapping[str, Any], plan: Mapping[str, Any]) -> Any:
    planned = ((plan or {}).get("hosts") or {}).get(host) or {}
    if planned.get("address"):
        return planned["address"]
    if host in hostvars:
        source = hostvars[host]
        if "ansible_host" in source:
            return source["ansible_host"]
    return host


def imex_domains(
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Any],
    plan: Mapping[str, Any] | None,
    trays: Sequence[str],
    settings_var: str = "__imex_settings",
) -> dict[str, Any]:
    """groups | wideep.gb200._imex_domains(hostvars, gb200_plan, trays): {domains, trays, addresses, problems}.

    Computed once for all trays. Each tray's domain settings are hostvars[tray][settings_var] (what
    its own variables say); they must agree. A tray's address is gb200_plan.hosts[tray].address when
    the plan has one, else its ansible_host. Problems come back as data, so that every tray can fail
    with them (a run_once task that raised would fail the first tray only).
    """
    plain = {name: list(hosts) for name, hosts in groups.items()}
    try:
        settings = imex.agreed_settings({t: dict(hostvars[t][settings_var]) for t in trays})
        names, pattern = list(settings["groups"] or []), str(settings["pattern"] or "")
        members = {h for g in imex.domain_groups(plain, names, pattern) for h in plain.get(g, [])}
        addresses = {h: _address(h, hostvars, plan or {}) for h in members}
        layout = imex.imex_domains(plain, list(trays), names, pattern, addresses, int(settings["max_trays"]))
    except imex.ImexError as exc:
        return {"domains": {}, "trays": {}, "addresses": {}, "problems": exc.problems}
    return {**layout, "problems": []}


def imex_nodes_config(nodes: Sequence[str]) -> str:
    """domain nodes | wideep.gb200._imex_nodes_config: the text of nodes_config.cfg."""
    return imex.nodes_config(list(nodes))


def dkms_status(text: str | None, module: str) -> dict[str, Any]:
    """`dkms status` output | wideep.gb200._dkms_status(module): {version: {kernels: {kernel: state}}}."""
    return gdrcopy.dkms_status(text, module)


def gdrapi_version(header: str | None) -> str:
    """include/gdrapi.h text | wideep.gb200._gdrapi_version: "2.5"."""
    try:
        return gdrcopy.gdrapi_version(header)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def resource_limits(values: Mapping[str, Any], domains: Sequence[str] = ("*", "root")) -> dict[str, Any]:
    """{memlock, stack, nofile} | wideep.gb200._resource_limits: {limits_conf, systemd, ulimit}."""
    try:
        return host_limits.limits(dict(values), list(domains))
    except ValueError as exc:
        raise AnsibleFilterError(f"resource_limits: {exc}") from None


def thp_mode(text: str | None) -> str | None:
    """transparent_hugepage/enabled text | wideep.gb200._thp_mode: the selected mode."""
    return host_limits.thp_mode(text)


def sysctls_to_set(wanted: Mapping[str, Any], running: Sequence[str]) -> list[str]:
    """host_limits_sysctls | wideep.gb200._sysctls_to_set(sysctl -n lines): name=value of those that differ."""
    try:
        return host_limits.sysctls_to_set(dict(wanted), list(running))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def rdma_hca_report(listing: str | None) -> dict[str, Any]:
    """'<hca>/<port> <state>' lines | wideep.gb200._rdma_hca_report: {ok, active, inactive, message}."""
    return rdma.hca_report(rdma.port_states(listing))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "_nvidia_modprobe_options": nvidia_modprobe_options,
            "_nvidia_toolkit_apt_repo": nvidia_toolkit_apt_repo,
            "_deb822_source": deb822_source,
            "_multiarch_libdir": multiarch_libdir,
            "_imex_package": imex_package,
            "_version_glob": version_glob,
            "_docker_daemon_json": docker_daemon_json,
            "_imex_domains": imex_domains,
            "_imex_nodes_config": imex_nodes_config,
            "_dkms_status": dkms_status,
            "_gdrapi_version": gdrapi_version,
            "_resource_limits": resource_limits,
            "_thp_mode": thp_mode,
            "_sysctls_to_set": sysctls_to_set,
            "_rdma_hca_report": rdma_hca_report,
        }
