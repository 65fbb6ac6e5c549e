# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.kernel_cache_info: each configuration's marker and file sizes read by one shell
command (no Python on the tray), judged here with the module's own code
(module_utils/_kernel_cache.py verify_marker); the module runs instead for a full verify (every
file hashed on the tray), for arguments out of the ordinary, or when the read fails."""

from __future__ import annotations

import base64
import binascii
import json
import os
import shlex
from collections.abc import Mapping
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._kernel_cache import COMPILE_LOG, MARKER, count_compiles, parse_marker, verify_marker

MODULE = "wideep.gb200.kernel_cache_info"


def plain(args: Mapping[str, Any]) -> tuple[str, list[tuple[str, dict[str, Any]]]] | None:
    """(root, [(config, key)]) when the shell read can answer; None leaves it to the module."""
    root, configs = args.get("root"), args.get("configs")
    if not set(args) <= {"root", "configs", "full_verify"} or args.get("full_verify") not in (None, False):
        return None
    if not isinstance(root, str) or not root.startswith("/") or set(root) & {"~", "$", "\n"} or not isinstance(configs, list):
        return None
    out = []
    for item in configs:
        if not isinstance(item, Mapping) or not set(item) <= {"config", "key"}:
            return None
        config, key = item.get("config"), item.get("key") or {}
        # what the module refuses (it names it), or cannot be a directory name: the module's
        if not isinstance(config, str) or not config or "/" in config or config.startswith(".") or "\n" in config or not isinstance(key, Mapping):
            return None
        try:
            out.append((config, json.loads(json.dumps(dict(key)))))  # plain JSON types, as the module gets them
        except (TypeError, ValueError):
            return None
    return root, out


def script(root: str, configs: list[str]) -> str:
    """NUL-separated records: M <i> <marker, base64 | ->, F <i> <size> <path under the config's
    directory> (every file, links followed, as the module's getsize does), L <compile log, base64>, E."""
    lines = ["set -u"]
    for index, config in enumerate(configs):
        d = shlex.quote(os.path.join(root, config))
        m = shlex.quote(os.path.join(root, config, MARKER))
        lines.append(f"if [ -f {m} ] && [ -r {m} ]; then printf 'M {index} %s\\0' \"$(base64 -w0 < {m})\" || exit 3; else printf 'M {index} -\\0'; fi")
        # a listing that is not whole (a directory it cannot read) is no answer: the module's then
        lines.append(f"if [ -d {d} ]; then find -L {d} -type f -printf 'F {index} %s %P\\0' || exit 3; fi")
    log = shlex.quote(os.path.join(root, COMPILE_LOG))
    lines.append(f"if [ -f {log} ]; then printf 'L %s\\0' \"$(base64 -w0 < {log})\" || exit 3; fi")
    lines.append("printf 'E\\0'")
    return "\n".join(lines) + "\n"


def judged(root: str, configs: list[tuple[str, dict[str, Any]]], output: str) -> dict[str, Any] | None:
    """The module's result from the script's output; None when it is not what the script prints."""
    records = output.split("\0")
    if len(records) < 2 or records[-1] != "" or records[-2] != "E":
        return None
    markers: dict[int, str | None] = {}
    sizes: dict[str, int] = {}
    log = ""
    try:
        for record in records[:-2]:
            kind, _sep, rest = record.partition(" ")
            if kind == "M":
                index, _sep, text = rest.partition(" ")
                markers[int(index)] = None if text == "-" else base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
            elif kind == "F":
                index, size, path = rest.split(" ", 2)
                sizes[os.path.normpath(os.path.join(root, configs[int(index)][0], path))] = int(size)
            elif kind == "L":
                log = base64.b64decode(rest, validate=True).decode("utf-8", errors="replace")
            else:
                return None
    except (IndexError, ValueError, binascii.Error):
        return None
    if set(markers) != set(range(len(configs))):
        return None
    caches = {
        config: verify_marker(os.path.join(root, config), parse_marker(markers[index]), key, lambda path: sizes.get(os.path.normpath(path)))
        for index, (config, key) in enumerate(configs)
    }
    return {"changed": False, "caches": caches, "compiles": count_compiles(log.split("\n"))}


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        asked = plain(self._task.args)
        if asked is not None:
            root, configs = asked
            # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
            read = ActionBase._low_level_execute_command(self, "/bin/sh -s", in_data=script(root, [c for c, _key in configs]).encode())
            answer = judged(root, configs, str(read.get("stdout", ""))) if read.get("rc") == 0 else None
            if answer is not None:
                result.update(answer)
                return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result
