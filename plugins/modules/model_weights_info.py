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
  - Reads only. It removes no corrupt file, records no stamp and writes no C(.wideep/COMPLETE) marker; the
    M(wideep.gb200.model_weights_mark) module does, and reports the same fields.
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
seealso:
  - module: wideep.gb200.model_weights_mark
"""

EXAMPLES = r"""
- name: What does each tray hold?
  wideep.gb200.model_weights_info:
    dest: /models/deepseek-ai/DeepSeek-R1
    manifest: "{{ model_weights_manifest.files }}"
  register: weights

- name: Show the trays that still lack bytes
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} lacks {{ weights.missing_bytes }} bytes ({{ weights.corrupt | length }} corrupt file(s))"
  when: not weights.complete
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
corrupt:
  description: Published files whose content does not match the manifest (never served; M(wideep.gb200.model_weights_mark) removes them).
  returned: always
  type: list
  elements: str
index_problems:
  description: Where the safetensors index disagrees with the manifest (checked once complete).
  returned: always
  type: list
  elements: str
digest:
  description: sha256 of the canonical manifest (what C(.wideep/COMPLETE) holds once marked).
  returned: always
  type: str
marker:
  description:
    - V(current) when C(.wideep/COMPLETE) holds this manifest's digest, V(stale) when it holds another (or cannot
      be read), V(absent) without one.
  returned: always
  type: str
  sample: current
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    check_index,
    inspect,
    manifest_digest,
    parse_manifest,
    read_marker,
)


def _marker_state(marker: str | None, digest: str) -> str:
    if marker is None:
        return "absent"
    return "current" if marker == digest else "stale"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "manifest": {"type": "list", "elements": "dict", "required": True},
            "full_verify": {"type": "bool", "default": False},
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
    result: dict[str, Any] = {k: v for k, v in report.items() if k != "stamps"}
    module.exit_json(
        changed=False,
        corrupt=sorted(path for path, info in report["files"].items() if info["state"] == "corrupt"),
        index_problems=check_index(dest, entries) if report["complete"] else [],
        digest=digest,
        marker=_marker_state(read_marker(dest), digest),
        **result,
    )


if __name__ == "__main__":
    main()
