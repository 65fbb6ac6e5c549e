# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""NVIDIA's apt repositories for a tray's distribution and architecture, and deb822 sources files.

PRIVATE to the collection: may change at any time. Used by gpu_driver, imex, container_runtime and rdma.
"""

from __future__ import annotations

from collections.abc import Sequence

CUDA_REPOS = "https://developer.download.nvidia.com/compute/cuda/repos"
# The CUDA repositories' signing key since the 2022 rotation (file name = key id).
CUDA_KEY_FILE = "3bf863cc.pub"
# NVIDIA names the Arm server (Grace) repository "sbsa", not "aarch64" or "arm64".
CUDA_ARCH = {"x86_64": "x86_64", "aarch64": "sbsa"}
# Debian architecture names, as flat repositories of .deb files use them.
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
# Debian/Ubuntu multiarch tuples: the library directory /usr/lib/<tuple> of each architecture.
MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
# The distributions a tray may run: Debian 12 (test OS), Ubuntu 22.04 / 24.04 (production).
CUDA_DISTROS = {("debian", "12"): "debian12", ("ubuntu", "22.04"): "ubuntu2204", ("ubuntu", "24.04"): "ubuntu2404"}
# Where the roles that use the CUDA repository (gpu_driver, imex) put it. Both write the same
# content through cuda_apt_files(), so running one after the other changes nothing.
CUDA_KEY_PATH = "/etc/apt/keyrings/nvidia-cuda.asc"
CUDA_SOURCES_PATH = "/etc/apt/sources.list.d/nvidia-cuda.sources"
CUDA_PREFERENCES_PATH = "/etc/apt/preferences.d/nvidia-cuda"
# NVIDIA's cuda-repository-pin-600: the repository's packages win over the distribution's
# same-named ones (Ubuntu ships nvidia-*-580 too, at other versions).
CUDA_PREFERENCES = "Package: *\nPin: release l=NVIDIA CUDA\nPin-Priority: 600\n"
TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container/stable/deb"
TOOLKIT_KEY = "https://nvidia.github.io/libnvidia-container/gpgkey"


class RepoError(ValueError):
    """The tray's distribution or architecture has no NVIDIA repository."""


def _arch(architecture: str, table: dict[str, str]) -> str:
    try:
        return table[architecture]
    except KeyError:
        raise RepoError(f"architecture {architecture!r} is not supported (supported: {', '.join(sorted(table))})") from None


def cuda_repo(distribution: str, version: str, architecture: str) -> dict[str, str]:
    """The CUDA repository of a tray: {"distro", "arch", "url", "key_url"}.

    distribution / version / architecture are ansible_facts' distribution, distribution_version
    (Debian: "12" or "12.5"; Ubuntu: "24.04") and architecture ("x86_64", "aarch64").
    """
    name = distribution.lower()
    release = version.split(".", 1)[0] if name == "debian" else ".".join(version.split(".")[:2])
    try:
        distro = CUDA_DISTROS[(name, release)]
    except KeyError:
        known = ", ".join(f"{d.title()} {v}" for d, v in CUDA_DISTROS)
        raise RepoError(f"{distribution} {version} has no NVIDIA CUDA repository this collection supports ({known})") from None
    arch = _arch(architecture, CUDA_ARCH)
    url = f"{CUDA_REPOS}/{distro}/{arch}/"
    return {"distro": distro, "arch": arch, "url": url, "key_url": url + CUDA_KEY_FILE}


def cuda_apt_files(distribution: str, version: str, architecture: str) -> dict[str, str]:
    """Everything a role writes to use the CUDA repository: cuda_repo() plus the paths and file contents."""
    repo = cuda_repo(distribution, version, architecture)
    comment = f"NVIDIA CUDA repository for {repo['distro']}/{repo['arch']} (wideep.gb200: gpu_driver, imex)"
    return {
        **repo,
        "key_path": CUDA_KEY_PATH,
        "sources_path": CUDA_SOURCES_PATH,
        "sources": deb822_source(repo["url"], CUDA_KEY_PATH, comment=comment),
        "preferences_path": CUDA_PREFERENCES_PATH,
        "preferences": CUDA_PREFERENCES,
    }


def multiarch_libdir(architecture: str) -> str:
    """The multiarch library directory of a Debian/Ubuntu host: x86_64 -> /usr/lib/x86_64-linux-gnu."""
    return f"/usr/lib/{_arch(architecture, MULTIARCH)}"


def toolkit_repo(architecture: str) -> dict[str, str]:
    """NVIDIA's nvidia-container-toolkit repository (a flat repository per Debian architecture)."""
    arch = _arch(architecture, DEB_ARCH)
    return {"arch": arch, "url": f"{TOOLKIT_REPO}/{arch}", "key_url": TOOLKIT_KEY}


def deb822_source(
    uris: str | Sequence[str],
    signed_by: str,
    suites: str | Sequence[str] = "/",
    components: Sequence[str] = (),
    comment: str = "",
    architectures: Sequence[str] = (),
) -> str:
    """A /etc/apt/sources.list.d/*.sources file (deb822). A flat repository has suite "/" and no components."""

    def words(value: str | Sequence[str]) -> str:
        return value if isinstance(value, str) else " ".join(value)

    suite_words = words(suites)
    if suite_words.endswith("/") and components:
        raise ValueError("deb822_source: a flat repository (suite ending in '/') takes no components")
    if not suite_words.endswith("/") and not components:
        raise ValueError("deb822_source: a repository with named suites needs components")
    lines = [f"# {line}".rstrip() for line in comment.splitlines()] if comment else []
    lines += ["Types: deb", f"URIs: {words(uris)}", f"Suites: {suite_words}"]
    if components:
        lines.append(f"Components: {' '.join(components)}")
    if architectures:
        lines.append(f"Architectures: {' '.join(architectures)}")
    lines.append(f"Signed-By: {signed_by}")
    return "\n".join(lines) + "\n"


def version_glob(package: str, version: str) -> str:
    """An apt package spec that matches any Debian revision of an upstream version: name=580.95.05-*."""
    return f"{package}={version}-*" if version else package


def imex_package(driver_version: str) -> str:
    """The nvidia-imex package that matches a driver version exactly.

    Branches up to 570 name it nvidia-imex-<branch>; from 580 on it is plain nvidia-imex, versioned
    like the driver (NVIDIA's repositories list nvidia-imex-570-570.211.01 next to nvidia-imex-580.126.09).
    """
    parts = driver_version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"imex_package: {driver_version!r} is not a driver version such as 580.95.05")
    branch = int(parts[0])
    name = "nvidia-imex" if branch >= 580 else f"nvidia-imex-{branch}"
    return version_glob(name, driver_version)
