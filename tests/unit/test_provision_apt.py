"""NVIDIA apt repositories per distribution and architecture (aarch64 -> sbsa), deb822 files."""

from __future__ import annotations

import pytest

from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.apt import (
    RepoError,
    cuda_apt_files,
    cuda_repo,
    deb822_source,
    imex_package,
    multiarch_libdir,
    toolkit_repo,
    version_glob,
)

BASE = "https://developer.download.nvidia.com/compute/cuda/repos"


@pytest.mark.parametrize(
    ("distribution", "version", "arch", "url"),
    [
        ("Debian", "12", "x86_64", f"{BASE}/debian12/x86_64/"),
        ("Debian", "12.12", "x86_64", f"{BASE}/debian12/x86_64/"),  # point releases share the repository
        ("Ubuntu", "22.04", "aarch64", f"{BASE}/ubuntu2204/sbsa/"),  # Grace: NVIDIA's "sbsa"
        ("Ubuntu", "24.04", "aarch64", f"{BASE}/ubuntu2404/sbsa/"),
        ("Ubuntu", "24.04", "x86_64", f"{BASE}/ubuntu2404/x86_64/"),
    ],
)
def test_cuda_repo(distribution: str, version: str, arch: str, url: str) -> None:
    repo = cuda_repo(distribution, version, arch)
    assert repo["url"] == url
    assert repo["key_url"] == url + "3bf863cc.pub"


@pytest.mark.parametrize(
    ("distribution", "version", "arch", "words"),
    [
        ("Ubuntu", "20.04", "x86_64", "Ubuntu 20.04 has no NVIDIA CUDA repository"),
        ("Debian", "11", "x86_64", "Debian 11"),
        ("RedHat", "9.4", "x86_64", "RedHat 9.4"),
        ("Ubuntu", "24.04", "ppc64le", "architecture 'ppc64le' is not supported"),
    ],
)
def test_cuda_repo_refused(distribution: str, version: str, arch: str, words: str) -> None:
    with pytest.raises(RepoError, match=words):
        cuda_repo(distribution, version, arch)


def test_cuda_apt_files_for_a_grace_tray() -> None:
    files = cuda_apt_files("Ubuntu", "24.04", "aarch64")
    assert files["sources"] == (
        "# NVIDIA CUDA repository for ubuntu2404/sbsa (wideep.gb200: gpu_driver, imex)\n"
        "Types: deb\n"
        f"URIs: {BASE}/ubuntu2404/sbsa/\n"
        "Suites: /\n"
        "Signed-By: /etc/apt/keyrings/nvidia-cuda.asc\n"
    )
    assert files["key_url"] == f"{BASE}/ubuntu2404/sbsa/3bf863cc.pub"
    assert files["preferences"] == "Package: *\nPin: release l=NVIDIA CUDA\nPin-Priority: 600\n"
    assert (files["key_path"], files["sources_path"]) == ("/etc/apt/keyrings/nvidia-cuda.asc", "/etc/apt/sources.list.d/nvidia-cuda.sources")


@pytest.mark.parametrize(("arch", "deb"), [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_toolkit_repo(arch: str, deb: str) -> None:
    assert toolkit_repo(arch)["url"] == f"https://nvidia.github.io/libnvidia-container/stable/deb/{deb}"


@pytest.mark.parametrize(("arch", "libdir"), [("x86_64", "/usr/lib/x86_64-linux-gnu"), ("aarch64", "/usr/lib/aarch64-linux-gnu")])
def test_multiarch_libdir(arch: str, libdir: str) -> None:
    assert multiarch_libdir(arch) == libdir


def test_multiarch_libdir_refuses_what_it_does_not_know() -> None:
    with pytest.raises(RepoError, match="architecture 'ppc64le' is not supported"):
        multiarch_libdir("ppc64le")


def test_flat_source() -> None:
    text = deb822_source(f"{BASE}/ubuntu2404/sbsa/", "/etc/apt/keyrings/nvidia-cuda.asc", comment="NVIDIA CUDA")
    assert text == (f"# NVIDIA CUDA\nTypes: deb\nURIs: {BASE}/ubuntu2404/sbsa/\nSuites: /\nSigned-By: /etc/apt/keyrings/nvidia-cuda.asc\n")


def test_suite_source() -> None:
    text = deb822_source(["http://a/debian", "http://b/debian"], "/k.gpg", suites=["bookworm"], components=["main", "contrib"])
    assert "URIs: http://a/debian http://b/debian\nSuites: bookworm\nComponents: main contrib\n" in text


@pytest.mark.parametrize(("suites", "components"), [("/", ["main"]), ("bookworm", [])])
def test_source_shape_refused(suites: str, components: list[str]) -> None:
    with pytest.raises(ValueError, match="deb822_source"):
        deb822_source("http://x", "/k", suites, components)


@pytest.mark.parametrize(
    ("driver", "spec"),
    [
        ("580.159.04", "nvidia-imex=580.159.04-*"),
        ("595.45.04", "nvidia-imex=595.45.04-*"),
        ("570.211.01", "nvidia-imex-570=570.211.01-*"),  # up to 570 the branch is in the name
    ],
)
def test_imex_package_matches_the_driver(driver: str, spec: str) -> None:
    assert imex_package(driver) == spec


@pytest.mark.parametrize("driver", ["", "580", "580.x.1"])
def test_imex_package_refused(driver: str) -> None:
    with pytest.raises(ValueError, match="imex_package"):
        imex_package(driver)


def test_version_glob() -> None:
    assert version_glob("nvidia-container-toolkit", "1.18.1") == "nvidia-container-toolkit=1.18.1-*"
    assert version_glob("nvidia-container-toolkit", "") == "nvidia-container-toolkit"
