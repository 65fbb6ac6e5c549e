#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_weights_info
short_description: What part of a model a tray holds, checked against a pinned manifest
description:
  - Compares O(dest) with the manifest (path, size, sha256 of every file). A published file whose stamp (size,
    mtime, inode, sha256) matches is trusted without hashing; any other published file is hashed again.
  - Reports per file V(complete), V(partial) (with the verified-size prefix usable for resume), V(missing) or
    V(corrupt), the bytes still missing and the free space at O(dest).
  - With O(repair=true) a corrupt published file is removed (it is fetched again); with O(mark_complete=true) the
    C(.wideep/COMPLETE) marker is written once every file verified. Both are the only changes it makes.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  dest:
    description: The model directory on this tray (workers mount it read-only).
    type: path
    required: true
  manifest:
    description: The files of the model, each a dictionary with C(path), C(size) and C(sha256).
    type: list
    elements: dict
    required: true
  full_verify:
    description: Hash every published file even when its stamp matches.
    type: bool
    default: false
  repair:
    description: Remove published files whose content does not match the manifest.
    type: bool
    default: true
  mark_complete:
    description: Write C(.wideep/COMPLETE) (the manifest digest) once every file is complete.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: What does each tray hold?
  wideep.gb200.model_weights_info:
    dest: /models/deepseek-ai/DeepSeek-R1
    manifest: "{{ model_weights_manifest.files }}"
  register: weights
"""

RETURN = r"""
files:
  description: Per manifest path, its C(state), the usable bytes C(have) and C(size).
  returned: always
  type: dict
  sample: {"model-00001-of-000163.safetensors": {"state": "complete", "have": 5234139343, "size": 5234139343}}
complete:
  description: Every file is published and verified.
  returned: always
  type: bool
missing_bytes:
  description: Bytes this tray still needs.
  returned: always
  type: int
hashed_bytes:
  description: Bytes hashed to check published files (0 when every stamp matched).
  returned: always
  type: int
free_bytes:
  description: Free bytes on the filesystem of O(dest).
  returned: always
  type: int
removed:
  description: Corrupt published files removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
index_problems:
  description: Where the safetensors index disagrees with the manifest (checked once complete).
  returned: always
  type: list
  elements: str
digest:
  description: sha256 of the canonical manifest (what C(.wideep/COMPLETE) holds).
  returned: always
  type: str
"""

import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    check_index,
    inspect,
    manifest_digest,
    parse_manifest,
    state_path,
    write_json_atomic,
)


def _read_marker(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return str(json.load(handle))
    except (OSError, ValueError):
        return ""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "manifest": {"type": "list", "elements": "dict", "required": True},
            "full_verify": {"type": "bool", "default": False},
            "repair": {"type": "bool", "default": True},
            "mark_complete": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    dest: str = module.params["dest"]
    try:
        entries = parse_manifest({"files": module.params["manifest"]})
    except ValueError as exc:
        module.fail_json(msg=f"bad manifest: {exc}")
    digest = manifest_digest(entries)
    report = inspect(dest, entries, full_verify=module.params["full_verify"])
    changed = False
    removed = [path for path, info in report["files"].items() if info["state"] == "corrupt"]
    if removed and module.params["repair"]:
        changed = True
        if not module.check_mode:
            for path in removed:
                os.unlink(os.path.join(dest, path))
                report["stamps"].pop(path, None)
    if not module.check_mode and os.path.isdir(dest):
        write_json_atomic(state_path(dest, "stamps.json"), report["stamps"])
    index_problems = check_index(dest, entries) if report["complete"] else []
    marker = state_path(dest, "COMPLETE")
    if report["complete"] and not index_problems and module.params["mark_complete"]:
        current = _read_marker(marker)
        if current != digest:
            changed = True
            if not module.check_mode:
                write_json_atomic(marker, digest)
    elif os.path.exists(marker) and not report["complete"]:
        changed = True
        if not module.check_mode:
            os.unlink(marker)
    result: dict[str, Any] = {k: v for k, v in report.items() if k != "stamps"}
    module.exit_json(changed=changed, removed=removed, index_problems=index_problems, digest=digest, **result)


if __name__ == "__main__":
    main()
