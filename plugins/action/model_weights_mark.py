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
    CHUNK,
    FileEntry,
    index_names,
    index_problems,
    manifest_digest,
    parse_manifest,
    partial_path,
    state_path,
)
from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import file_line
from ansible_collections.wideep.gb200.plugins.plugin_utils.weights.boot import boot

MODULE = "wideep.gb200.model_weights_mark"


def script(dest: str, entries: list[FileEntry], indexes: list[str]) -> str:
    """S stamps.json, M COMPLETE (- none, ? not a readable file), F <i> <size> <mtime s.ns> <inode>
    per entry (- not a file), P <i> <size> per entry's partial file (when it is a file), X <k> per
    index, D <available blocks> <block size>, E."""
    marker = shlex.quote(state_path(dest, "COMPLETE"))
    lines = ["set -u", file_line("S", state_path(dest, "stamps.json"))]
    lines.append(
        f"if [ -e {marker} ] || [ -L {marker} ]; then if [ -f {marker} ] && [ -r {marker} ]; then "
        f"printf 'M %s\\n' \"$(base64 -w0 < {marker})\" || exit 3; else echo 'M ?'; fi; else echo 'M -'; fi"
    )
    for index, entry in enumerate(entries):
        q = shlex.quote(os.path.join(dest, entry.path))
        lines.append(f"if [ -f {q} ]; then printf 'F {index} %s\\n' \"$(stat -L -c '%s %.9Y %i' -- {q})\" || exit 3; else echo 'F {index} -'; fi")
        part = shlex.quote(partial_path(dest, entry.path))
        lines.append(f"if [ -f {part} ]; then printf 'P {index} %s\\n' \"$(stat -L -c '%s' -- {part})\" || exit 3; fi")
    lines += [file_line(f"X {k}", os.path.join(dest, name)) for k, name in enumerate(indexes)]
    lines.append(f'probe={shlex.quote(dest)}; while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done')
    lines.append("printf 'D %s\\n' \"$(stat -f -c '%a %S' -- \"$probe\")\" || exit 3")
    lines.append("echo E")
    return "\n".join(lines) + "\n"


def _text(field: str) -> str:
    return base64.b64decode(field, validate=True).decode("utf-8")


def parse(output: str) -> dict[str, Any] | None:
    """The read's lines, or None when they are not what the script prints."""
    lines = output.splitlines()
    if not lines or lines[-1] != "E":
        return None
    found: dict[str, Any] = {"stats": {}, "partials": {}, "texts": {}, "stamps": {}, "marker": None, "free": None}
    try:
        for line in lines[:-1]:
            tag, _sep, rest = line.partition(" ")
            if tag == "S":
                found["stamps"] = {} if rest == "-" else json.loads(_text(rest))
            elif tag == "M":
                found["marker"] = None if rest == "-" else "" if rest == "?" else str(json.loads(_text(rest)))
            elif tag == "F":
                index, _sep, stat = rest.partition(" ")
                if stat == "-":
                    continue
                match = re.fullmatch(r"(\d+) (\d+)\.(\d{9}) (\d+)", stat)
                if match is None:
                    return None  # a stat without nanoseconds: the module's
                size, seconds, nanoseconds, inode = (int(g) for g in match.groups())
                found["stats"][int(index)] = (size, seconds * 10**9 + nanoseconds, inode)
            elif tag == "P":
                index, _sep, size_text = rest.partition(" ")
                found["partials"][int(index)] = int(size_text)
            elif tag == "X":
                index, _sep, text = rest.partition(" ")
                found["texts"][int(index)] = None if text == "-" else _text(text)
            elif tag == "D":
                blocks, block_size = rest.split(" ")
                found["free"] = int(blocks) * int(block_size)
            else:
                return None
    except (KeyError, ValueError, binascii.Error):  # a bad stamps.json, marker or index: the module's
        return None
    if found["free"] is None or not isinstance(found["stamps"], dict):
        return None
    return found


def _answer(entries: list[FileEntry], files: dict[str, dict[str, Any]], free: int, problems: list[str]) -> dict[str, Any]:
    """The module's result when it changes nothing (a receiver, if any, is added by the caller)."""
    return {
        "changed": False,
        "corrupt": [],
        "removed": [],
        "stamped": [],
        "marked": False,
        "unmarked": False,
        "index_problems": problems,
        "digest": manifest_digest(entries),
        "receiver": {},
        "files": files,
        "complete": all(f["state"] == "complete" for f in files.values()),
        "missing_bytes": sum(f["size"] - f["have"] for f in files.values()),
        "hashed_bytes": 0,
        "free_bytes": free,
    }


def settled(entries: list[FileEntry], indexes: list[str], output: str, mark_complete: bool) -> dict[str, Any] | None:
    """The module's result when it would change nothing and start nothing; None otherwise."""
    found = parse(output)
    if found is None:
        return None
    stats, stamps = found["stats"], found["stamps"]
    try:
        parsed = {name: json.loads(found["texts"][k]) for k, name in enumerate(indexes)}
    except (KeyError, TypeError, ValueError):  # an index missing or unreadable: the module's
        return None
    if not all(isinstance(value, dict) for value in parsed.values()):
        return None
    for number, entry in enumerate(entries):
        stamp = stamps.get(entry.path)
        if number not in stats or not isinstance(stamp, dict) or stamp.get("sha256") != entry.sha256:
            return None
        if stats[number] != (entry.size, stamp.get("mtime_ns"), stamp.get("ino")):
            return None
    problems = index_problems(entries, parsed)
    if mark_complete and not problems and found["marker"] != manifest_digest(entries):
        return None  # the module writes COMPLETE
    files = {e.path: {"state": "complete", "have": e.size, "size": e.size} for e in entries}
    return _answer(entries, files, found["free"], problems)


def bare(entries: list[FileEntry], output: str) -> dict[str, Any] | None:
    """The module's result on a tray that holds no file of the manifest under its name and no
    COMPLETE marker (partial files may be there: their whole chunks are kept): it hashes, removes,
    stamps and marks nothing, and every file is to be received. None otherwise."""
    found = parse(output)
    if found is None or not entries or found["stats"] or found["marker"] is not None:
        return None
    files = {}
    for number, entry in enumerate(entries):
        have = min(found["partials"].get(number, 0), entry.size) // CHUNK * CHUNK
        files[entry.path] = {"state": "partial" if have else "missing", "have": have, "size": entry.size}
    return _answer(entries, files, found["free"], [])


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        answer = self._read(task_vars or {})
        if answer is not None:
            result.update(answer)
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result

    def _read(self, task_vars: dict[str, Any]) -> dict[str, Any] | None:
        """The module's answer from one shell read (a settled tray), or from that read and one run
        of the tray's Python that starts the receiver (a tray holding none of the files); None
        when the module is to run."""
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
        params = checked.validated_parameters
        try:
            entries = parse_manifest({"files": params["manifest"]})
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
        output = str(read.get("stdout", ""))
        answer = settled(entries, indexes, output, bool(params["mark_complete"]))
        if answer is not None:
            return answer
        answer = bare(entries, output)
        if answer is None or not params["receive"] or self._task.check_mode:
            return answer  # check mode, or no receiver asked for: the module would start none either
        # The validator expanded the receiver's paths (~, $VARS) here; the tray expands them as the module would.
        raw = plain.get("receive") or {}
        receive = params["receive"] | {key: raw.get(key) for key in ("job_path", "progress_path")}
        call = {"dest": dest, "manifest": params["manifest"], "lacking": list(answer["files"]), "receive": receive}
        started = boot(self, task_vars, "boot_receiver", call)
        if started is None:
            return None
        if started.get("failed") or not isinstance(started.get("receiver"), dict):
            return answer | {"failed": True, "msg": str(started.get("msg", started))}
        return answer | {"receiver": started["receiver"]}
