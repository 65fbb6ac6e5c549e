#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_info
short_description: What a provisioning role needs to know about a tray, in one read
description:
  - Reads, in one task, the dpkg state of some packages, what some paths are (a file, a directory, a symlink and
    its target, or nothing), and the content of some small files, so that a role decides from one read what it
    has to change; on a no-op run nothing, and no other task of the role touches the tray.
  - Its action plugin does the read with one shell command (C(sh), C(dpkg-query), C(base64), C(docker); no Python on the host,
    which a module run costs a tray about 250 ms of CPU for) and runs this module only when that read cannot be
    used (no C(base64) or C(dpkg-query) there, an unexpected answer). Both give the same result.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  packages:
    description: Debian package names whose dpkg state to read (a name with a version or architecture is not looked up).
    type: list
    elements: str
    default: []
  paths:
    description: Paths to describe (not followed when a symlink).
    type: list
    elements: path
    default: []
  contents:
    description: Files to read whole (small text files, such as C(/etc/docker/daemon.json)).
    type: list
    elements: path
    default: []
  images:
    description:
      - Image references (or IDs) to inspect with the tray's C(docker image inspect); RV(images) lists those the tray holds,
        as M(community.docker.docker_image_info) does with a list of names.
    type: list
    elements: str
    default: []
  container_states:
    description:
      - Container names whose C(State) to read (C(docker container inspect --format '{{json .State}}')); only the
        state, never the rest of the description, which holds the container's environment.
    type: list
    elements: str
    default: []
  containers:
    description:
      - Container names to describe, each by its C(State), the image ID it runs (C(Image)) and its C(Labels)
        (C(docker container inspect) with a format that asks for these three only, never the environment).
      - What the wideep.gb200.containers role checks before it leaves a container alone.
    type: list
    elements: str
    default: []
  compute_capabilities:
    description:
      - Read each GPU's compute capability (C(nvidia-smi --query-gpu=uuid,compute_cap)); part of a kernel cache's key.
      - Without C(nvidia-smi), or when its query fails, RV(compute_capabilities) is empty, as for a tray without GPUs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: What the role needs to know, in one read
  wideep.gb200.host_info:
    packages: [rdma-core, ibverbs-providers]
    paths: [/usr/lib/aarch64-linux-gnu/libmlx5.so]
    contents: [/etc/docker/daemon.json]
  register: tray

- name: Install what is missing
  ansible.builtin.apt:
    name: "{{ tray.missing_packages }}"
  when: tray.missing_packages | length > 0
"""

RETURN = r"""
installed_packages:
  description: The asked packages that dpkg says are installed (state C(ii)).
  returned: always
  type: list
  elements: str
  sample: [rdma-core]
missing_packages:
  description: The asked packages that are not installed (unknown to dpkg, removed, or half installed), in the order asked.
  returned: always
  type: list
  elements: str
  sample: [ibverbs-providers]
paths:
  description: >-
    Per asked path, C(type) (V(file), V(directory), V(link), V(other) or V(absent)), C(exists) (whether it
    resolves to something: false for a dangling symlink) and, for a symlink, C(target) (as written in the link).
  returned: always
  type: dict
  sample: {"/usr/lib/aarch64-linux-gnu/libmlx5.so": {"type": "link", "exists": true, "target": "libmlx5.so.1"}}
contents:
  description: Per asked file, its text (invalid UTF-8 replaced), or null when it is not a readable file.
  returned: always
  type: dict
  sample: {"/etc/docker/daemon.json": "{}\n"}
images:
  description: The Engine API's inspection of each asked image the tray holds (C(Id), C(RepoTags), C(Config), ...), in the order asked.
  returned: always
  type: list
  elements: dict
  sample: [{"Id": "sha256:5d0da3dc9764...", "RepoTags": ["lmsysorg/sglang:v0.5.2"]}]
container_states:
  description: Per asked container, the Engine API's C(State) (C(Running), C(Status), C(ExitCode), ...), or null when there is no such container.
  returned: always
  type: dict
  sample: {"sglang-decode-0-r0": {"Running": true, "Status": "running", "ExitCode": 0}}
containers:
  description: Per asked container, C(State), C(Image) (the ID of the image it runs) and C(Labels), or null when there is no such container.
  returned: always
  type: dict
  sample: {"wideep-decode_0-rank0": {"State": {"Status": "running"}, "Image": "sha256:5d0da3dc9764...", "Labels": {"wideep.gb200.spec": "0123abcd"}}}
compute_capabilities:
  description: With O(compute_capabilities), each GPU's compute capability by UUID; empty without GPUs or nvidia-smi, or when not asked.
  returned: always
  type: dict
  sample: {"GPU-4c2f0b7e-1a2b-3c4d-5e6f-000000000001": "10.0"}
"""

import json
import os
import stat
import subprocess
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._container_read import CONTAINER_FORMAT, STATE_FORMAT
from ansible_collections.wideep.gb200.plugins.module_utils._gpu_info import COMPUTE_CAP_QUERY, parse_compute_caps
from ansible_collections.wideep.gb200.plugins.module_utils._packages import looked_up


def _installed(packages: list[str]) -> list[str]:
    names = [p for p in packages if looked_up(p)]
    if not names:
        return []
    try:
        proc = subprocess.run(
            ["dpkg-query", "--show", "--showformat", "${Package}\t${db:Status-Abbrev}\n", *names], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return []
    found = {line.split("\t")[0] for line in proc.stdout.splitlines() if "\t" in line and line.split("\t")[1].startswith("ii")}
    return [p for p in names if p in found]


def _path(path: str) -> dict[str, Any]:
    try:
        info = os.lstat(path)
    except OSError:
        return {"type": "absent", "exists": False}
    if stat.S_ISLNK(info.st_mode):
        return {"type": "link", "exists": os.path.exists(path), "target": os.readlink(path)}
    if stat.S_ISREG(info.st_mode):
        return {"type": "file", "exists": True}
    if stat.S_ISDIR(info.st_mode):
        return {"type": "directory", "exists": True}
    return {"type": "other", "exists": True}


def _content(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def _images(module: AnsibleModule, refs: list[str]) -> list[Any]:
    found: list[Any] = []
    for ref in refs:
        try:
            proc = subprocess.run(["docker", "image", "inspect", "--", ref], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            module.fail_json(msg=f"images: no docker command on this host to inspect {ref} with")
        if proc.returncode == 0:
            found.extend(json.loads(proc.stdout))
        elif "no such image" not in proc.stderr.lower():
            module.fail_json(msg=f"docker image inspect {ref} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return found


def _inspect(module: AnsibleModule, option: str, names: list[str], template: str) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for name in names:
        try:
            proc = subprocess.run(["docker", "container", "inspect", "--format", template, "--", name], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            module.fail_json(msg=f"{option}: no docker command on this host to inspect {name} with")
        if proc.returncode == 0:
            states[name] = json.loads(proc.stdout)
        elif "no such container" in proc.stderr.lower():
            states[name] = None
        else:
            module.fail_json(msg=f"docker container inspect {name} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return states


def _compute_capabilities(module: AnsibleModule) -> dict[str, str]:
    path = module.get_bin_path("nvidia-smi")
    if not path:
        return {}
    rc, out, _err = module.run_command([path, *COMPUTE_CAP_QUERY])
    return parse_compute_caps(out) if rc == 0 else {}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
            "contents": {"type": "list", "elements": "path", "default": []},
            "images": {"type": "list", "elements": "str", "default": []},
            "container_states": {"type": "list", "elements": "str", "default": []},
            "containers": {"type": "list", "elements": "str", "default": []},
            "compute_capabilities": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    packages: list[str] = module.params["packages"]
    installed = _installed(packages)
    module.exit_json(
        changed=False,
        installed_packages=installed,
        missing_packages=[p for p in packages if p not in installed],
        paths={p: _path(p) for p in module.params["paths"]},
        contents={p: _content(p) for p in module.params["contents"]},
        images=_images(module, module.params["images"]),
        container_states=_inspect(module, "container_states", module.params["container_states"], STATE_FORMAT),
        containers=_inspect(module, "containers", module.params["containers"], CONTAINER_FORMAT),
        compute_capabilities=_compute_capabilities(module) if module.params["compute_capabilities"] else {},
    )


if __name__ == "__main__":
    main()
