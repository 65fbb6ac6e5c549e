# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.model_weights_manifest: a source whose every file still has the size and mtime its
cache recorded, answered from one shell read (no Python on the tray).

The module walks the source, reuses the cached sha256 of every file whose size and mtime did not
change, checks the safetensors index, and rewrites the cache when it changed. This action lists
the source with `find` (type, size, mtime in ns, path) and reads the cache and the indexes in the
same read; when the listing is exactly the cache (same files, sizes, mtimes, in the module's walk
order) and the indexes agree, the module would hash nothing and write nothing: the action answers
with the cache's manifest. A symlink, a find that fails, anything to hash, an index problem or
arguments out of the ordinary, and the module runs.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
import shlex
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    MANIFEST_ARGUMENT_SPEC,
    index_names,
    index_problems,
    manifest_digest,
    parse_manifest,
)
from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import file_line

MODULE = "wideep.gb200.model_weights_manifest"
INDEX = "model.safetensors.index.json"


def script(source: str, cache: str) -> str:
    """C <cache, base64> (or C -), L <find's NUL-separated records "type size mtime path", base64;
    a record "X" when find failed>, I <path, base64> <content, base64> per index file, E."""
    src = shlex.quote(source)
    prune = "-mindepth 1 -name '.wideep*' -prune -o"
    return (
        "\n".join(
            [
                "set -u",
                f"[ -d {src} ] || exit 3",
                file_line("C", cache),
                f"printf 'L %s\\n' \"$({{ find {src} {prune} -printf '%y %s %T@ %P\\0' || printf 'X\\0'; }} | base64 -w0)\"",
                f"find {src} {prune} -type f -name '*{INDEX}' -exec sh -c "
                + shlex.quote('for f; do printf "I %s %s\\n" "$(printf %s "$f" | base64 -w0)" "$(base64 -w0 < "$f")" || exit 3; done')
                + " sh {} + || exit 3",
                "echo E",
            ]
        )
        + "\n"
    )


def _walk_key(path: str) -> list[tuple[int, str]]:
    """os.walk's order (top-down, a directory's files sorted, then its subdirectories sorted)."""
    *folders, name = path.split("/")
    return [(1, folder) for folder in folders] + [(0, name)]


def _mtime_ns(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)\.(\d{9,})", text)  # find's %T@: seconds, then 10 digits of fraction
    return int(match.group(1)) * 10**9 + int(match.group(2)[:9]) if match else None


def answer(source: str, output: str) -> dict[str, Any] | None:
    """The module's result when it would hash nothing and write nothing; None otherwise."""
    lines = output.splitlines()
    if not lines or lines[-1] != "E":
        return None
    cache: Any = None
    listing: list[str] | None = None
    indexes: dict[str, str] = {}
    try:
        for line in lines[:-1]:
            tag, _sep, rest = line.partition(" ")
            if tag == "C":
                cache = None if rest == "-" else json.loads(base64.b64decode(rest, validate=True).decode("utf-8"))
            elif tag == "L":
                listing = base64.b64decode(rest, validate=True).decode("utf-8").split("\0")
            elif tag == "I":
                name, _sep, content = rest.partition(" ")
                indexes[posixpath.relpath(base64.b64decode(name, validate=True).decode("utf-8"), source)] = base64.b64decode(content, validate=True).decode(
                    "utf-8"
                )
            else:
                return None
    except (ValueError, binascii.Error):
        return None
    if not isinstance(cache, dict) or listing is None or listing[-1] != "":
        return None
    found = []
    for record in listing[:-1]:
        kind, size, mtime, path = [*record.split(" ", 3), "", "", ""][:4]
        if kind == "d":
            continue
        mtime_ns = _mtime_ns(mtime)
        if kind != "f" or not size.isdigit() or mtime_ns is None or not path:
            return None  # a symlink, a device, find's failure: the module's
        found.append((path, int(size), mtime_ns))
    found.sort(key=lambda item: _walk_key(item[0]))
    cached = cache.get("files")
    if set(cache) != {"files"} or not isinstance(cached, list) or len(cached) != len(found) or not found:
        return None
    files = []
    for listed, entry in zip(found, cached, strict=True):
        if not isinstance(entry, dict) or set(entry) != {"path", "size", "sha256", "mtime_ns"}:
            return None
        if (entry["path"], entry["size"], entry["mtime_ns"]) != listed:
            return None  # changed since: the module hashes it
        files.append(entry)
    try:
        entries = parse_manifest({"files": files})
        parsed = {name: json.loads(indexes[name]) for name in index_names(entries)}
    except (KeyError, ValueError):
        return None
    if not all(isinstance(value, dict) for value in parsed.values()) or index_problems(entries, parsed):
        return None  # the module fails, naming the problem
    return {"changed": False, "files": files, "digest": manifest_digest(entries), "total_bytes": sum(e.size for e in entries), "hashed_bytes": 0}


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        found = self._read()
        if found is not None:
            result.update(found)
            return result
        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result

    def _read(self) -> dict[str, Any] | None:
        args = self._task.args
        source, cache = args.get("path"), args.get("cache")
        # Paths the module expands (type path: ~, $VARS) are the module's to read.
        if not all(isinstance(p, str) and p.startswith("/") and not set(p) & {"~", "$", "\n"} for p in (source, cache)):
            return None
        checked = ArgumentSpecValidator(MANIFEST_ARGUMENT_SPEC).validate(dict(args))
        if checked.error_messages:
            return None  # the module refuses the arguments by name
        # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
        read = ActionBase._low_level_execute_command(self, "/bin/sh -s", in_data=script(str(source), str(cache)).encode())
        if read.get("rc") != 0:
            return None
        return answer(str(source), str(read.get("stdout", "")))
