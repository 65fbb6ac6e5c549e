# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
name: cuda_apt_repo
short_description: NVIDIA's CUDA apt repository for a host, from its facts
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
description:
  - Maps a host's distribution, release and architecture to NVIDIA's CUDA apt repository, C(x86_64) or, on Grace
    (C(aarch64)), C(sbsa), and returns the deb822 sources file, the apt pin that prefers the repository's packages,
    and the paths the C(wideep.gb200.gpu_driver) and C(wideep.gb200.imex) roles write them to.
  - Debian 12, Ubuntu 22.04 and Ubuntu 24.04 on C(x86_64) or C(aarch64); anything else fails, naming what is supported.
    Only Debian 12 on C(x86_64) is exercised by this collection's tests on hosts; the others are mapped by the same
    tested function (unit tests) from NVIDIA's published repository layout.
positional: _input
options:
  _input:
    description: The host's facts (C(ansible_facts)); C(distribution), C(distribution_version) and C(architecture) are read.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Where a Grace tray's driver packages come from
  ansible.builtin.debug:
    msg: "{{ ansible_facts | wideep.gb200.cuda_apt_repo }}"
  # on Ubuntu 24.04 aarch64:
  #   url: https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/sbsa/
  #   key_url: https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/sbsa/3bf863cc.pub

- name: Add it
  ansible.builtin.copy:
    content: "{{ repo.sources }}"
    dest: "{{ repo.sources_path }}"
    mode: "0644"
  vars:
    repo: "{{ ansible_facts | wideep.gb200.cuda_apt_repo }}"
"""

RETURN = r"""
_value:
  description: The repository and the files that use it.
  type: dict
  contains:
    distro:
      description: NVIDIA's name of the distribution release.
      type: str
      sample: ubuntu2404
    arch:
      description: NVIDIA's name of the architecture (C(sbsa) for aarch64).
      type: str
      sample: sbsa
    url:
      description: The repository.
      type: str
    key_url:
      description: Its signing key.
      type: str
    key_path:
      description: Where the roles keep the key.
      type: str
    sources_path:
      description: Where the roles write the sources file.
      type: str
    sources:
      description: The deb822 sources file, signed by the key at C(key_path).
      type: str
    preferences_path:
      description: Where the roles write the pin.
      type: str
    preferences:
      description: The apt pin (priority 600 for the repository's packages).
      type: str
"""

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.wideep.gb200.plugins.plugin_utils.provision.apt import RepoError, cuda_apt_files


def cuda_apt_repo(facts: Mapping[str, Any]) -> dict[str, str]:
    try:
        return cuda_apt_files(str(facts["distribution"]), str(facts["distribution_version"]), str(facts["architecture"]))
    except KeyError as exc:
        raise AnsibleFilterError(f"cuda_apt_repo: the facts lack {exc}; gather them first (ansible.builtin.setup)") from None
    except RepoError as exc:
        raise AnsibleFilterError(f"cuda_apt_repo: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cuda_apt_repo": cuda_apt_repo}
