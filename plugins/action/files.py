# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.files: answer "nothing to do" without running Python on the host.

A module run costs a tray about 250 ms of CPU (Python compiling and importing ansible-core's
module_utils from the AnsiballZ zip, which has no bytecode), a rack's no-op run pays it on 18
trays per task, and most runs of this module change nothing. So this action first reads, in one
shell command (`sh -s`, no Python), the mode, owner, group and sha256 of every listed file, and
compares them with the wanted content and mode here on the controller. When every file already
is as wanted (and every `state: absent` one is absent), it returns the module's no-change result
without running the module. In every other case (a file differs, a path is a symlink or not a
regular file, the read fails, the host has no GNU stat or sha256sum, more than FAST_PATH_FILES
files, bad arguments) it runs the module, which decides, writes, diffs and reports as always.
The read sends paths only, never content (the secret env files go through this module).
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any

from ansible.plugins.action import ActionBase

MODULE = "wideep.gb200.files"
# The module's options: any other key (a typo) goes to the module, which refuses it by name.
OPTIONS = frozenset(("dest", "files", "mode", "directory_mode", "directories"))
# More files than this: one `stat` + `sha256sum` each costs more shell forks than the module's
# Python start-up saves.
FAST_PATH_FILES = 64

# Reads only. One line per path, in order: "F <octal mode> <uid> <gid> <sha256>" for a regular
# file, "D <octal mode> <uid> <gid>" for a directory, "A" for nothing there, "O" for anything else
# (a symlink, a device).
READ_SCRIPT = r"""set -u
printf 'U %s %s\n' "$(id -u)" "$(id -g)"
for p in "$@"; do
  if [ -L "$p" ]; then echo O
  elif [ -d "$p" ]; then s=$(stat -c '%a %u %g' -- "$p") && echo "D $s" || echo O
  elif [ -f "$p" ]; then
    s=$(stat -c '%a %u %g' -- "$p") && h=$(sha256sum < "$p") || { echo O; continue; }
    printf 'F %s %s\n' "$s" "${h%% *}"
  elif [ -e "$p" ]; then echo O
  else echo A
  fi
done
"""


def _octal(text: str) -> int | None:
    try:
        return int(text, 8)
    except ValueError:
        return None


def _wanted(files: Any, default_mode: Any) -> list[tuple[str, str | None, int]] | None:
    """(relative path, sha256 of the wanted content or None for absent, mode) per file, sorted;
    None when anything is out of the ordinary (the module then checks and reports it)."""
    if not isinstance(files, dict) or not files or len(files) > FAST_PATH_FILES:
        return None
    rows: list[tuple[str, str | None, int]] = []
    for rel, entry in sorted(files.items()):
        if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in rel.split("/") or "\n" in rel:
            return None
        if not isinstance(entry, dict):
            return None
        if "state" in entry:
            if entry != {"state": "absent"}:
                return None
            rows.append((rel, None, 0))
            continue
        content = entry.get("content")
        if not isinstance(content, str):
            return None
        try:
            mode = int(str(entry.get("mode") or default_mode), 8)
        except ValueError:
            return None
        rows.append((rel, hashlib.sha256(content.encode("utf-8")).hexdigest(), mode))
    return rows


def _wanted_directories(directories: Any) -> list[tuple[str, int]] | None:
    """(relative path, mode) per entry of `directories`, sorted; None when out of the ordinary."""
    if directories is None:
        return []
    if not isinstance(directories, dict):
        return None
    rows = []
    for rel, mode_text in sorted(directories.items()):
        if not isinstance(rel, str) or not rel.strip("/") or rel.startswith("/") or ".." in rel.split("/") or "\n" in rel:
            return None
        try:
            rows.append((rel.rstrip("/"), int(str(mode_text), 8)))
        except ValueError:
            return None
    return rows


def unchanged(wanted: list[tuple[str, str | None, int]], output: str, directories: list[tuple[str, int]] | None = None) -> bool:
    """Whether the read (READ_SCRIPT's output, the directories' lines first) shows every
    directory and every file as wanted."""
    lines = output.splitlines()
    directories = directories or []
    if len(lines) != len(directories) + len(wanted) + 1:
        return False
    head = lines[0].split()
    if len(head) != 3 or head[0] != "U":
        return False
    owner = head[1:]
    for (_rel, mode), line in zip(directories, lines[1 : 1 + len(directories)], strict=True):
        fields = line.split()
        if len(fields) != 4 or fields[0] != "D" or fields[2:4] != owner or _octal(fields[1]) != mode:
            return False
    for (_rel, sha, mode), line in zip(wanted, lines[1 + len(directories) :], strict=True):
        fields = line.split()
        if sha is None:
            if fields != ["A"]:
                return False
            continue
        if len(fields) != 5 or fields[0] != "F":
            return False
        if _octal(fields[1]) != mode or fields[2:4] != owner or fields[4] != sha:
            return False
    return True


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        dest = args.get("dest")
        wanted = _wanted(args.get("files"), args.get("mode") or "0644")
        directories = _wanted_directories(args.get("directories"))
        plain = set(args) <= OPTIONS and _octal(str(args.get("directory_mode") or "0755")) is not None
        # A dest with `~` or `$` is expanded by the module (type path): leave it to the module.
        if isinstance(dest, str) and dest.startswith("/") and not set(dest) & {"\n", "~", "$"} and wanted is not None and directories is not None and plain:
            base = dest.rstrip("/")
            paths = [f"{base}/{rel}" for rel, _mode in directories] + [f"{base}/{rel}" for rel, _sha, _mode in wanted]
            command = "/bin/sh -s -- " + " ".join(shlex.quote(p) for p in paths)
            # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
            read = ActionBase._low_level_execute_command(self, command, in_data=READ_SCRIPT.encode())
            if read.get("rc") == 0 and unchanged(wanted, str(read.get("stdout", "")), directories):
                result.update(changed=False, changed_files=[], unchanged_files=len(wanted), changed_directories=[])
                if self._task.diff:
                    result["diff"] = []
                return result
        module = self._execute_module(module_name=MODULE, module_args=dict(args), task_vars=task_vars)
        if self._task.no_log:
            # The module's invocation echoes `files` (their content) and a diff shows it: Ansible
            # censors both on output, not in a registered result. A no_log task keeps neither.
            module.pop("invocation", None)
            module.pop("diff", None)
        result.update(module)
        return result
