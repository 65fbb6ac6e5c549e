#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_driver_info
short_description: The loaded NVIDIA kernel driver, and whether it is the one GB200 needs
description:
  - Reads C(/proc/driver/nvidia/version) and C(/proc/driver/nvidia/params) (under O(proc_dir)), which say whether
    a driver is loaded, its version and branch, the open or proprietary kernel module, and the parameters it runs with.
  - Judges it against O(min_branch) (Blackwell runs only the open kernel modules) and lists the O(module_options)
    the running driver does not have yet, which take a driver reload or a reboot.
  - The one reader of that file in this collection; M(wideep.gb200.gpu_info) reads it the same way.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.info_module
  - wideep.gb200._attributes.posix
options:
  proc_dir:
    description: Where the loaded driver describes itself. Only tests change it, to read a copy of another host's.
    type: path
    default: /proc/driver/nvidia
  min_branch:
    description: The oldest acceptable driver branch (the version's major number); RV(check) judges against it.
    type: int
    default: 0
  module_options:
    description:
      - nvidia module parameters the driver should run with, as C(params) names them (without C(NVreg_)), for example
        V(EnableStreamMemOPs=1) as a mapping. RV(pending) lists those it does not run with yet.
    type: dict
    default: {}
seealso:
  - module: wideep.gb200.gpu_info
"""

EXAMPLES = r"""
- name: Read the loaded driver
  wideep.gb200.nvidia_driver_info:
    min_branch: 570
    module_options:
      EnableStreamMemOPs: 1
      RegistryDwords: "PeerMappingOverride=1;"
  register: driver

- name: Require the open driver of branch 570 or later
  ansible.builtin.assert:
    that: driver.check.ok
    fail_msg: "{{ driver.check.message }}"
"""

RETURN = r"""
present:
  description: A driver is loaded (its C(version) file exists and is not empty).
  returned: always
  type: bool
flavor:
  description: V(open) or V(proprietary) kernel module; V(unknown) when the file is not understood; null without a driver.
  returned: always
  type: str
  sample: open
version:
  description: The driver version.
  returned: always
  type: str
  sample: 580.159.04
branch:
  description: Its major number.
  returned: always
  type: int
  sample: 580
arch:
  description: The architecture the module was built for.
  returned: always
  type: str
  sample: aarch64
line:
  description: The first line of the C(version) file.
  returned: always
  type: str
params:
  description: The parameters the loaded driver runs with (C(params)), values unquoted; empty without a driver.
  returned: always
  type: dict
  sample: {"EnableStreamMemOPs": "0", "CreateImexChannel0": "0"}
check:
  description: The verdict against O(min_branch).
  returned: always
  type: dict
  contains:
    ok:
      description: The open kernel module of branch O(min_branch) or later is loaded.
      type: bool
    state:
      description: V(ok), V(absent), V(unknown), V(proprietary) or V(too_old).
      type: str
    message:
      description: What was found, in words.
      type: str
pending:
  description: The O(module_options) the running driver does not have yet, each with its loaded and wanted value.
  returned: always
  type: list
  elements: str
  sample: ["EnableStreamMemOPs: loaded '0', configured '1'"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._nvidia_driver import PROC_DIR, check_driver, pending_params, read_driver


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "proc_dir": {"type": "path", "default": PROC_DIR},
            "min_branch": {"type": "int", "default": 0},
            "module_options": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    proc_dir: str = module.params["proc_dir"]
    info = read_driver(proc_dir)
    module.exit_json(
        changed=False,
        check=check_driver(info, module.params["min_branch"], os.path.join(proc_dir, "version")),
        pending=pending_params(info["params"], module.params["module_options"]),
        **info,
    )


if __name__ == "__main__":
    main()
