#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_cache_compile
short_description: Compile one configuration's JIT kernels once on this tray, judge the result by content, publish it with its marker
description:
  - Runs the given C(docker run) command line under C(timeout) (the worker's container with its command replaced by the compile
    command, e.g. C(python3 -m sglang.compile_deep_gemm) and the worker's SGLang flags), writing into
    C(<root>/.staging/<config>), under O(timeout), writing its elapsed time and the number of files written so far
    to O(progress_path) every second.
  - Judges the result by what the cache holds, not by the exit code, because SGLang's compile ends with one request
    that can fail in a disaggregated configuration after every kernel was cached. It is accepted when it holds
    complete DeepGEMM kernels (O(deep_gemm)) and none half written.
  - On acceptance writes C(KEY.json) (the key, the kernel counts, every file with size and sha256) and moves the
    staging directory to C(<root>/<config>) in one rename; a rejected or timed-out run leaves the published cache
    as it was, and fails with the tail of the compile's output.
  - Appends one line per run to C(<root>/compile-log.jsonl).
version_added: 0.2.0
author:
  - wideep.gb200 authors (@wideep-gb200)
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: full
    details:
      - Reports that it would compile; runs nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details:
      - Compiles every time it runs; the kernel_cache role runs it only for a configuration no tray holds.
options:
  root:
    description: The cache root on this tray (gb200_kernel_cache_dir).
    type: path
    required: true
  config:
    description: The configuration's digest (the plan's); the cache is C(<root>/<config>).
    type: str
    required: true
  key:
    description: The full key the marker records.
    type: dict
    required: true
  docker_argv:
    description: The C(docker run) command line, its cache volume pointing at C(<root>/.staging/<config>).
    type: list
    elements: str
    required: true
  container_name:
    description: The name given in O(docker_argv), to stop the container at the timeout.
    type: str
    required: true
  deep_gemm:
    description: Require DeepGEMM kernels in the result.
    type: bool
    default: true
  timeout:
    description: Seconds the compile may run.
    type: int
    default: 3600
  progress_path:
    description: JSON file rewritten every second with the elapsed time and the files written.
    type: path
  log_lines:
    description: Lines of the compile's output returned (and shown on failure).
    type: int
    default: 30
seealso:
  - module: wideep.gb200.kernel_cache_info
"""

EXAMPLES = r"""
- name: Compile the configuration's kernels once
  wideep.gb200.kernel_cache_compile:
    root: /var/lib/wideep/kernel-cache
    config: d7a7a5c74c23958b
    key: {config: d7a7a5c74c23958b, image_id: "sha256:...", gpu: "10.0"}
    container_name: wideep-kernel-compile-d7a7a5c74c23958b
    docker_argv: [docker, run, --rm, --name, wideep-kernel-compile-d7a7a5c74c23958b, "...", python3, -m, sglang.compile_deep_gemm, "..."]
  async: 3700
  poll: 0
"""

RETURN = r"""
accepted:
  description: The compile produced a usable cache, published at C(<root>/<config>).
  returned: success
  type: bool
verdict:
  description: Why it was accepted (or rejected).
  returned: always
  type: str
exit_code:
  description: The compile's exit code (null at the timeout). Not C(rc), which Ansible would read as this task's own.
  returned: always
  type: int
seconds:
  description: How long it ran.
  returned: always
  type: float
kernels:
  description: Complete DeepGEMM and Triton kernels, and other files, in the result.
  returned: always
  type: dict
log_tail:
  description: The last O(log_lines) lines of the compile's output.
  returned: always
  type: list
  elements: str
"""

import json
import os
import shutil
import threading
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._kernel_cache import STAGING, count_files, judge, log_run, publish, scan, write_marker


def _progress(path: str | None, data: dict[str, Any]) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(partial, path)


def _tail(path: str, lines: int) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in handle.readlines()[-lines:]]
    except OSError:
        return []


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "config": {"type": "str", "required": True},
            "key": {"type": "dict", "required": True, "no_log": False},
            "docker_argv": {"type": "list", "elements": "str", "required": True},
            "container_name": {"type": "str", "required": True},
            "deep_gemm": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 3600},
            "progress_path": {"type": "path"},
            "log_lines": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    p = module.params
    root, config = p["root"], p["config"]
    if not config or "/" in config or config.startswith("."):
        module.fail_json(msg=f"config {config!r} is not a configuration digest")
    staging = os.path.join(root, STAGING, config)
    if module.check_mode:
        module.exit_json(changed=True, accepted=False, verdict="check mode: would compile", exit_code=0, seconds=0.0, kernels={}, log_tail=[])
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    log_path = os.path.join(root, STAGING, f"{config}.log")
    started = time.monotonic()
    rc: int | None
    outcome: dict[str, Any] = {}

    def work() -> None:
        # coreutils timeout stops the docker client (which stops its container) at the limit: 124.
        outcome["rc"], outcome["out"], outcome["err"] = module.run_command(["timeout", "--kill-after=30", str(p["timeout"]), *p["docker_argv"]])

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(1)
        elapsed = time.monotonic() - started
        line = f"compiling {config}: {elapsed:.0f} s, {count_files(staging)} files written"
        _progress(p["progress_path"], {"updated": time.time(), "state": "compiling", "line": line})
    rc = outcome.get("rc")
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(str(outcome.get("out", "")) + str(outcome.get("err", "")))
    if rc in (124, 137):
        module.run_command(["docker", "rm", "--force", p["container_name"]])
        rc = None
    seconds = round(time.monotonic() - started, 1)
    found = scan(staging)
    accepted, verdict = judge(rc, found, p["deep_gemm"])
    tail = _tail(log_path, p["log_lines"])
    kernels = {"deep_gemm": found["deep_gemm"]["complete"], "triton": found["triton"]["complete"], "other_files": found["other_files"]}
    log_run(root, {"config": config, "rc": rc, "seconds": seconds, "accepted": accepted, "verdict": verdict, "kernels": kernels})
    _progress(p["progress_path"], {"updated": time.time(), "state": "done", "line": f"compiled {config} in {seconds:.0f} s: {verdict}"})
    result: dict[str, Any] = {"exit_code": rc, "seconds": seconds, "verdict": verdict, "kernels": kernels, "log_tail": tail}
    if not accepted:
        shutil.rmtree(staging, ignore_errors=True)
        module.fail_json(
            msg=f"the compile of configuration {config} failed ({'timed out after ' + str(p['timeout']) + ' s' if rc is None else verdict}); "
            f"its output ends: {' | '.join(tail[-8:]) or '(nothing)'} (whole log: {log_path})",
            changed=True,
            accepted=False,
            **result,
        )
    write_marker(staging, dict(p["key"]), found, {"compiled": {"seconds": seconds, "rc": rc, "verdict": verdict}})
    publish(staging, os.path.join(root, config))
    module.exit_json(changed=True, accepted=True, **result)


if __name__ == "__main__":
    main()
