# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.model_weights_mark: a tray that holds every file of the manifest, each trusted by
its stamp, answered from one shell read (no Python on the tray).

The module hashes what it cannot trust, removes what is corrupt, records stamps, writes or removes
the COMPLETE marker and starts a receiving relay; this action answers only when the module would
do none of that: every file's stamp (size, mtime, inode, sha256) matches, the safetensors indexes
agree with the manifest, and COMPLETE already holds the manifest's digest (or marking is off). It
judges with the module's own code (module_utils/_weights.py). Anything else, a full verify, or
arguments the module's spec refuses, and the module runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._relay_job import MARK_ARGUMENT_SPEC
from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    FileEntry,
    index_names,
    index_problems,
    manifest_digest,
    parse_manifest,
    state_path,
)
from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import file_line

MODULE = "wideep.gb200.model_weights_mark"


def script(dest: str, entries: list[FileEntry], indexes: list[str]) -> str:
    """S stamps.json, M COMPLETE (- none, ? not a readable file), F <i> <size> <mtime s.ns> <inode>
    per entry (- not a file), X <k> per index, D <available blocks> <block size>, E."""
    marker = shlex.quote(state_path(dest, "COMPLETE"))
    lines = ["set -u", file_line("S", state_path(dest, "stamps.json"))]
    lines.append(
        f"if [ -e {marker} ] || [ -L {marker} ]; then if [ -f {marker} ] && [ -r {marker} ]; then "
        f"printf 'M %s\\n' \"$(base64 -w0 < {marker})\" || exit 3; else echo 'M ?'; fi; else echo 'M -'; fi"
    )
    for index, entry in enumerate(entries):
        q = shlex.quote(os.path.join(dest, entry.path))
        lines.append(f"if [ -f {q} ]; then printf 'F {index} %s\\n' \"$(stat -L -c '%s %.9Y %i' -- {q})\" || exit 3; else echo 'F {index} -'; fi")
    lines += [file_line(f"X {k}", os.path.join(dest, name)) for k, name in enumerate(indexes)]
    lines.append(f'probe={shlex.quote(dest)}; while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done')
    lines.append("printf 'D %s\\n' \"$(stat -f -c '%a %S' -- \"$probe\")\" || exit 3")
    lines.append("echo E")
    return "\n".join(lines) + "\n"


def _text(field: str) -> str:
    return base64.b64decode(field, validate=True).decode("utf-8")


def settled(entries: list[FileEntry], indexes: list[str], output: str, mark_complete: bool) -> dict[str, Any] | None:
    """The module's result when it would change nothing and start nothing; None otherwise."""
    lines = output.splitlines()
    if not lines or lines[-1] != "E":
        return None
    stats: dict[int, tuple[int, int, int]] = {}
    texts: dict[int, str] = {}
    stamps: Any = {}
    marker: str | None = None
    free: int | None = None
    try:
        for line in lines[:-1]:
            tag, _sep, rest = line.partition(" ")
            if tag == "S":
                stamps = {} if rest == "-" else json.loads(_text(rest))
            elif tag == "M":
                marker = None if rest == "-" else "" if rest == "?" else str(json.loads(_text(rest)))
            elif tag == "F":
                index, _sep, stat = rest.partition(" ")
                match = re.fullmatch(r"(\d+) (\d+)\.(\d{9}) (\d+)", stat)
                if match is None:
                    return None  # not a file, or a stat without nanoseconds: the module's
                size, seconds, nanoseconds, inode = (int(g) for g in match.groups())
                stats[int(index)] = (size, seconds * 10**9 + nanoseconds, inode)
            elif tag == "X":
                index, _sep, text = rest.partition(" ")
                if text == "-":
                    return None
                texts[int(index)] = _text(text)
            elif tag == "D":
                blocks, block_size = rest.split(" ")
                free = int(blocks) * int(block_size)
            else:
                return None
        parsed = {name: json.loads(texts[k]) for k, name in enumerate(indexes)}
    except (KeyError, ValueError, binascii.Error):  # a bad stamps.json, marker or index: the module's
        return None
    if free is None or not isinstance(stamps, dict) or not all(isinstance(value, dict) for value in parsed.values()):
        return None
    for number, entry in enumerate(entries):
        stamp = stamps.get(entry.path)
        if number not in stats or not isinstance(stamp, dict) or stamp.get("sha256") != entry.sha256:
            return None
        if stats[number] != (entry.size, stamp.get("mtime_ns"), stamp.get("ino")):
            return None
    problems = index_problems(entries, parsed)
    digest = manifest_digest(entries)
    if mark_complete and not problems and marker != digest:
        return None  # the module writes COMPLETE
    files = {e.path: {"state": "complete", "have": e.size, "size": e.size} for e in entries}
    return {
        "changed": False,
        "corrupt": [],
        "removed": [],
        "stamped": [],
        "marked": False,
        "unmarked": False,
        "index_problems": problems,
        "digest": digest,
        "receiver": {},
        "files": files,
        "complete": True,
        "missing_bytes": 0,
        "hashed_bytes": 0,
        "free_bytes": free,
    }


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        answer = self._settled()
        if answer is not None:
            result.update(answer)
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result

    def _settled(self) -> dict[str, Any] | None:
        args = self._task.args
        dest = args.get("dest")
        # A dest the module expands (type path: ~, $VARS) is the module's to read.
        if not isinstance(dest, str) or not dest.startswith("/") or set(dest) & {"~", "$", "\n"}:
            return None
        try:
            plain = json.loads(json.dumps(dict(args)))  # plain JSON types, as the module gets them
        except (TypeError, ValueError):
            return None
        checked = ArgumentSpecValidator(MARK_ARGUMENT_SPEC).validate(plain)
        if checked.error_messages or checked.validated_parameters["full_verify"]:
            return None  # the module refuses the arguments by name; a full verify hashes every file there
        try:
            entries = parse_manifest({"files": checked.validated_parameters["manifest"]})
        except ValueError:
            return None
        if any("\n" in e.path for e in entries):
            return None
        dest = os.path.abspath(dest)
        indexes = index_names(entries)
        # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
        read = ActionBase._low_level_execute_command(self, "/bin/sh -s", in_data=script(dest, entries, indexes).encode())
        if read.get("rc") != 0:
            return None
        return settled(entries, indexes, str(read.get("stdout", "")), bool(checked.validated_parameters["mark_complete"]))
