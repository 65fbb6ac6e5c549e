#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_weights_mark
short_description: Check a tray's copy of a model against its manifest, drop what failed, and mark what verified
description:
  - Checks O(dest) against the manifest as M(wideep.gb200.model_weights_info) does and returns the same report
    (files, complete, missing, hashed and free bytes, corrupt files, index problems, digest), then changes the
    directory to match what it found, and only that.
  - Removes a published file whose content does not match the manifest (O(repair)), so the next broadcast pass
    fetches it again and no worker ever reads it.
  - Records the stamp (size, mtime, inode, sha256) of each file it had to hash, so the next run trusts the file
    without reading it again.
  - Writes C(.wideep/COMPLETE), the manifest digest, once every file verified and the safetensors index agrees
    (O(mark_complete)); removes a C(COMPLETE) left from before when a file is no longer complete.
  - Decides every change before making any, so check mode reports exactly what a real run changes.
  - Its action plugin answers from one shell read (no Python on the host) a tray that holds the whole manifest,
    trusted by its stamps, and a tray that holds none of its files (with O(receive), it then starts the receiver
    with one run of the host's Python, the relay's module_utils sent as source, no module run); anything else
    runs the module.
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
      - Reports the files it would remove and stamp and whether it would write or remove C(COMPLETE); changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
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
  receive:
    description:
      - When this tray lacks a file, start its receiving relay in the same call, detached (as
        M(wideep.gb200.model_weights_relay) with O(wideep.gb200.model_weights_relay#module:job_path)), before the pass is
        planned. It listens on O(receive.port) and takes its place in the chain (its index, the chain, the stream's start
        offsets) from the first upstream of run O(receive.run_id), whose hello carries the plan. It receives the files
        this check found lacking, forwards the stream downstream, and marks its copy when it holds everything.
      - This saves the broadcast one module run on every tray between checking and streaming.
      - Nothing is started in check mode, or when the tray holds every file.
    type: dict
    suboptions:
      run_id:
        description: The pass's identifier; an upstream of another run is refused.
        type: str
        required: true
      port:
        description: TCP port to listen on; a port already taken fails this task, naming it.
        type: int
        required: true
      job_path:
        description: Where the detached relay writes C({started, finished}) and then its result (read it with M(wideep.gb200.relay_wait)).
        type: path
        required: true
      progress_path:
        description: Progress file the relay rewrites every second.
        type: path
      stall_timeout:
        description: Seconds a send to the downstream may block before that tray is bypassed.
        type: float
        default: 30
      connect_timeout:
        description: Seconds to wait for the downstream to come up.
        type: float
        default: 120
      idle_timeout:
        description: Seconds without a byte after which the receiver gives up; no plan within this plus twice O(receive.connect_timeout) ends it too.
        type: float
        default: 300
      lanes:
        description: TCP connections per hop.
        type: int
        default: 2
      block_bytes:
        description: Bytes per frame (a multiple of 4096).
        type: int
        default: 1048576
      socket_buffer:
        description: SO_SNDBUF/SO_RCVBUF in bytes (0 keeps the kernel's autotuning).
        type: int
        default: 0
      congestion:
        description:
          - TCP congestion control of the connection the receiver forwards on ('' keeps the kernel's default); see
            M(wideep.gb200.model_weights_relay).
        type: str
        default: cubic
      page_cache:
        description:
          - C(direct) (O_DIRECT writes, around the page cache), C(drop) written ranges from the page cache behind the
            writer, or C(keep) them; see M(wideep.gb200.model_weights_relay).
        type: str
        default: direct
        choices: [direct, drop, keep]
seealso:
  - module: wideep.gb200.model_weights_info
"""

EXAMPLES = r"""
- name: Check each tray's copy, drop corrupt files, record stamps, mark a complete copy
  wideep.gb200.model_weights_mark:
    dest: /models/deepseek-ai/DeepSeek-R1
    manifest: "{{ model_weights_manifest.files }}"
  register: model_weights_held
"""

RETURN = r"""
files:
  description: Per manifest path, its C(state) as found (before any removal), the usable bytes C(have) and C(size).
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
  description: Published files whose content does not match the manifest.
  returned: always
  type: list
  elements: str
removed:
  description: Corrupt files removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
stamped:
  description: Files whose stamp was recorded (or would be, in check mode).
  returned: always
  type: list
  elements: str
marked:
  description: C(.wideep/COMPLETE) was written (or would be, in check mode).
  returned: always
  type: bool
unmarked:
  description: A C(.wideep/COMPLETE) from before was removed (or would be, in check mode).
  returned: always
  type: bool
index_problems:
  description: Where the safetensors index disagrees with the manifest (checked once complete).
  returned: always
  type: list
  elements: str
digest:
  description: sha256 of the canonical manifest (what C(.wideep/COMPLETE) holds).
  returned: always
  type: str
receiver:
  description: With O(receive), the detached relay started (C(pid), C(job_path), C(port)); empty when none was.
  returned: always
  type: dict
  sample: {"pid": 4242, "job_path": "/models/deepseek-ai/DeepSeek-R1/.wideep/relay-job.json", "port": 18515}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._relay import RelayError
from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import MARK_ARGUMENT_SPEC, start_receiver
from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    FileEntry,
    apply_marks,
    inspect,
    parse_manifest,
    plan_marks,
)


def receive(module: AnsibleModule, dest: str, entries: list[FileEntry], lacking: set[str]) -> dict[str, Any]:
    try:
        receiver = start_receiver(module.params["receive"], dest, entries, lacking)
    except RelayError as exc:
        module.fail_json(msg=str(exc))
    return receiver


def main() -> None:
    module = AnsibleModule(argument_spec=MARK_ARGUMENT_SPEC, supports_check_mode=True)
    dest: str = module.params["dest"]
    try:
        entries = parse_manifest({"files": module.params["manifest"]})
    except ValueError as exc:
        module.fail_json(msg=f"bad manifest: {exc}")
    report = inspect(dest, entries, full_verify=module.params["full_verify"])
    plan = plan_marks(dest, entries, report, repair=module.params["repair"], mark_complete=module.params["mark_complete"])
    if plan["changed"] and not module.check_mode:
        try:
            apply_marks(dest, plan)
        except OSError as exc:
            module.fail_json(msg=f"{dest}: {exc}")
    result: dict[str, Any] = {k: v for k, v in report.items() if k != "stamps"}
    # What the pass plans for this tray: every file not complete (the planner's rule, same report).
    lacking = {entry.path for entry in entries if report["files"].get(entry.path, {}).get("state") != "complete"}
    receiver = receive(module, dest, entries, lacking) if module.params["receive"] and lacking and not module.check_mode else {}
    module.exit_json(
        changed=plan["changed"],
        corrupt=sorted(path for path, info in report["files"].items() if info["state"] == "corrupt"),
        removed=plan["removed"],
        stamped=plan["stamped"],
        marked=plan["marked"],
        unmarked=plan["unmarked"],
        index_problems=plan["index_problems"],
        digest=plan["digest"],
        receiver=receiver,
        **result,
    )


if __name__ == "__main__":
    main()
