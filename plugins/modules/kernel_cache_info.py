#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_cache_info
short_description: Which JIT kernel caches a tray holds, complete and for which key
description:
  - For each compile configuration asked about, reads C(<root>/<config>/KEY.json), the completion marker
    M(wideep.gb200.kernel_cache_compile) writes, and reports whether the cache is C(complete) for the key wanted
    now (the plan's configuration, the image ID, the GPUs' compute capability), C(stale) (another key),
    C(incomplete) (a listed file is missing or has another size; or another sha256 with O(full_verify)) or
    C(absent).
  - Reads only. Also returns how many compile runs this tray has recorded (C(compile-log.jsonl)).
version_added: 0.2.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  root:
    description: The cache root on this tray (gb200_kernel_cache_dir).
    type: path
    required: true
  configs:
    description: The configurations to check, each a dictionary with C(config) (the plan's digest) and C(key) (the full key wanted).
    type: list
    elements: dict
    required: true
  full_verify:
    description: Hash every listed file instead of trusting sizes.
    type: bool
    default: false
seealso:
  - module: wideep.gb200.kernel_cache_compile
"""

EXAMPLES = r"""
- name: Which caches this tray holds
  wideep.gb200.kernel_cache_info:
    root: /var/lib/wideep/kernel-cache
    configs:
      - config: d7a7a5c74c23958b
        key: {config: d7a7a5c74c23958b, image_id: "sha256:...", gpu: "10.0"}
  register: held
"""

RETURN = r"""
caches:
  description: Per configuration, C(state) (complete, stale, incomplete, absent), C(why) and C(kernels) (counts from the marker).
  returned: always
  type: dict
  sample: {"d7a7a5c74c23958b": {"state": "complete", "why": "", "kernels": {"deep_gemm": 412, "triton": 37, "other_files": 5}}}
compiles:
  description: Compile runs recorded on this tray (lines of C(compile-log.jsonl)), per configuration.
  returned: always
  type: dict
  sample: {"d7a7a5c74c23958b": 1}
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._kernel_cache import COMPILE_LOG, count_compiles, verify


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "configs": {"type": "list", "elements": "dict", "required": True},
            "full_verify": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    root: str = module.params["root"]
    caches: dict[str, Any] = {}
    for item in module.params["configs"]:
        config = str(item.get("config") or "")
        if not config or "/" in config or config.startswith("."):
            module.fail_json(msg=f"configs: {config!r} is not a configuration digest")
        caches[config] = verify(os.path.join(root, config), dict(item.get("key") or {}), full=module.params["full_verify"])
    compiles: dict[str, int] = {}
    try:
        with open(os.path.join(root, COMPILE_LOG), encoding="utf-8", errors="replace") as handle:
            compiles = count_compiles(handle)
    except OSError:
        pass
    module.exit_json(changed=False, caches=caches, compiles=compiles)


if __name__ == "__main__":
    main()
