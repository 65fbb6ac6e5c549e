#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_weights_manifest
short_description: The manifest (path, size, sha256 of every file) of a model directory
description:
  - Hashes every file under O(path) once and returns the manifest the broadcast is checked against.
  - Hashes of files whose size and mtime did not change are reused from O(cache), so a re-run does not
    read the model again.
  - Checks that the safetensors index agrees with the files (every shard it names exists).
  - Writes only O(cache), and reports C(changed) when it does (the first run, or when the source changed).
  - Its action plugin answers a source whose every file still has the size and mtime O(cache) recorded from one
    shell read (C(find), the cache, the indexes; no Python on the host); anything to hash or write runs the module.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: full
    details:
      - Hashes the source as a real run does; the cache is not written, and C(changed) says whether it would be.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description: The model directory (the source).
    type: path
    required: true
  cache:
    description: JSON file keeping the hashes between runs (outside a read-only source).
    type: path
"""

EXAMPLES = r"""
- name: Manifest of the source copy
  wideep.gb200.model_weights_manifest:
    path: /lustre/models/DeepSeek-R1
    cache: /var/lib/wideep/manifest-DeepSeek-R1.json
  register: manifest
"""

RETURN = r"""
files:
  description: Every file, with C(path), C(size), C(sha256) (and C(mtime_ns)).
  returned: always
  type: list
  elements: dict
digest:
  description: sha256 of the canonical manifest.
  returned: always
  type: str
total_bytes:
  description: Sum of the file sizes.
  returned: always
  type: int
hashed_bytes:
  description: Bytes read to hash (0 when the cache covered every file).
  returned: always
  type: int
"""

import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    MANIFEST_ARGUMENT_SPEC,
    check_index,
    make_manifest,
    manifest_digest,
    parse_manifest,
    write_json_atomic,
)


def main() -> None:
    module = AnsibleModule(argument_spec=MANIFEST_ARGUMENT_SPEC, supports_check_mode=True)
    source: str = module.params["path"]
    cache: str | None = module.params["cache"]
    if not os.path.isdir(source):
        module.fail_json(msg=f"model source {source} is not a directory on {os.uname().nodename}")
    previous: dict[str, Any] | None = None
    if cache and os.path.exists(cache):
        try:
            with open(cache, encoding="utf-8") as handle:
                previous = json.load(handle)
        except (OSError, ValueError):
            previous = None
    manifest = make_manifest(source, previous)
    hashed = manifest.pop("hashed_bytes")
    if not manifest["files"]:
        module.fail_json(msg=f"model source {source} holds no files")
    entries = parse_manifest(manifest)
    problems = check_index(source, entries)
    if problems:
        module.fail_json(msg="the safetensors index disagrees with the files: " + "; ".join(problems))
    cache_changed = bool(cache) and manifest != previous
    if cache and cache_changed and not module.check_mode:
        write_json_atomic(cache, manifest)
    module.exit_json(
        changed=cache_changed,
        files=manifest["files"],
        digest=manifest_digest(entries),
        total_bytes=sum(e.size for e in entries),
        hashed_bytes=hashed,
    )


if __name__ == "__main__":
    main()
