#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: files
short_description: Write many small files under one directory in a single task
description:
  - Writes each given file under O(dest) atomically (temporary file, fsync, rename), and only
    when its content or mode differs, so that rendering hundreds of launch scripts costs one
    module run instead of one per file.
  - Files under O(dest) that are not listed are left alone.
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
      - Lists the files whose content or mode would change, writing none.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  dest:
    description: Directory to write into; created (with parents) when missing.
    type: path
    required: true
  files:
    description:
      - Relative path -> file. A relative path may contain sub-directories but not C(..).
    type: dict
    required: true
  mode:
    description: Permissions of files whose entry in O(files) gives no C(mode).
    type: str
    default: "0644"
  directory_mode:
    description:
      - Permissions of the directories this module creates (O(dest) and those above a file); a directory that
        exists keeps its own, unless O(directories) names it.
    type: str
    default: "0755"
  directories:
    description:
      - Relative path -> mode (string) of directories under O(dest) that must exist with exactly that mode, owned by
        the user the module runs as (root on a tray), such as a root-only directory of secret files; created, or their
        mode and owner put right, before the files are written.
    type: dict
    default: {}
notes:
  - Each value of O(files) is a dictionary with C(content) (string) and C(mode) (string, optional), or,
    for a file that must not exist (removed if it does), a dictionary whose only key C(state) is C(absent).
  - Files are written by the user the module runs as (root on a tray), replaced atomically (a new inode); a file with
    the wanted content and mode but another owner or group is rewritten, so that it belongs to that user again.
"""

EXAMPLES = r"""
- name: Write plan.json and one launch script per tray
  wideep.gb200.files:
    dest: /tmp/render
    files:
      plan.json:
        content: "{{ gb200_plan | to_nice_json }}"
      hosts/tray1.sh:
        content: "#!/bin/sh\necho hello\n"
        mode: "0755"

- name: A provisioning role's files in one module run, one of them removed
  wideep.gb200.files:
    dest: /
    files:
      etc/modprobe.d/nvidia-wideep.conf:
        content: "options nvidia NVreg_EnableStreamMemOPs=1\n"
      etc/modules-load.d/nvidia-peermem.conf:
        state: absent
"""

RETURN = r"""
changed_files:
  description: Relative paths of the files written or removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [plan.json, hosts/tray1.sh]
unchanged_files:
  description: How many files already had the wanted content, mode and owner (or were absent as wanted).
  returned: always
  type: int
  sample: 71
changed_directories:
  description: Relative paths of the O(directories) created or whose mode or owner was put right (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [etc/wideep/secret-env]
"""

import os
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule


def _wanted_mode(entry: dict[str, Any], default: str) -> int:
    return int(str(entry.get("mode") or default), 8)


def _current(path: str) -> tuple[str | None, int | None]:
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
        return content, stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None, None
    except UnicodeDecodeError:
        return "", stat.S_IMODE(os.stat(path).st_mode)


def _makedirs(directory: str, mode: int) -> None:
    """Create directory and its missing parents with exactly `mode` (not masked by the umask)."""
    if os.path.isdir(directory):
        return
    _makedirs(os.path.dirname(directory), mode)
    try:
        os.mkdir(directory)
    except FileExistsError:
        return
    os.chmod(directory, mode)


def _owned_by_us(path: str) -> bool:
    """Owned by the user and group this module runs as (root on a tray); a rewrite makes it so."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    return (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())


def _write(path: str, content: str, mode: int, directory_mode: int = 0o755) -> None:
    directory = os.path.dirname(path)
    _makedirs(directory, directory_mode)
    fd, tmp = tempfile.mkstemp(prefix=".wideep-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "files": {"type": "dict", "required": True},
            "mode": {"type": "str", "default": "0644"},
            "directory_mode": {"type": "str", "default": "0755"},
            "directories": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    dest: str = module.params["dest"]
    files: dict[str, Any] = module.params["files"]
    problems = []
    for rel, entry in files.items():
        if os.path.isabs(rel) or ".." in rel.split("/"):
            problems.append(f"{rel}: must be a relative path inside dest")
        elif isinstance(entry, dict) and "state" in entry:
            if entry != {"state": "absent"}:
                problems.append(f"{rel}: state takes only the value absent, and no other key beside it")
        elif not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            problems.append(f"{rel}: must be a mapping with a string 'content' (or only state: absent)")
        else:
            try:
                _wanted_mode(entry, module.params["mode"])
            except ValueError:
                problems.append(f"{rel}: mode {entry.get('mode')!r} is not octal")
    wanted_dirs: dict[str, int] = {}
    for rel, mode_text in (module.params["directories"] or {}).items():
        if os.path.isabs(rel) or ".." in rel.split("/") or not rel.strip("/"):
            problems.append(f"directories: {rel}: must be a relative path inside dest")
            continue
        try:
            wanted_dirs[rel] = int(str(mode_text), 8)
        except ValueError:
            problems.append(f"directories: {rel}: mode {mode_text!r} is not octal")
    directory_mode = 0o755
    try:
        directory_mode = int(module.params["directory_mode"], 8)
    except ValueError:
        problems.append(f"directory_mode {module.params['directory_mode']!r} is not octal")
    if problems:
        module.fail_json(msg="; ".join(problems))

    changed_dirs: list[str] = []
    for rel in sorted(wanted_dirs):
        path = os.path.join(dest, rel.rstrip("/"))
        mode = wanted_dirs[rel]
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            module.fail_json(msg=f"directories: {path} exists and is not a directory; move it away")
        if os.path.isdir(path):
            info = os.stat(path)
            if stat.S_IMODE(info.st_mode) == mode and (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()):
                continue
        changed_dirs.append(rel)
        if not module.check_mode:
            _makedirs(os.path.dirname(path), directory_mode)
            if not os.path.isdir(path):
                os.mkdir(path)
            os.chown(path, os.geteuid(), os.getegid())
            os.chmod(path, mode)
    changed: list[str] = []
    diffs: list[dict[str, str]] = []
    unchanged = 0
    for rel in sorted(files):
        entry = files[rel]
        path = os.path.join(dest, rel)
        if entry.get("state") == "absent":
            if os.path.lexists(path):
                changed.append(rel)
                if module._diff:
                    diffs.append({"before_header": path, "after_header": path, "before": _current(path)[0] or "", "after": ""})
                if not module.check_mode:
                    os.unlink(path)
            else:
                unchanged += 1
            continue
        mode = _wanted_mode(entry, module.params["mode"])
        content, current_mode = _current(path)
        if content == entry["content"] and current_mode == mode and _owned_by_us(path):
            unchanged += 1
            continue
        changed.append(rel)
        if module._diff:
            diffs.append({"before_header": path, "after_header": path, "before": content or "", "after": entry["content"]})
        if not module.check_mode:
            _write(path, entry["content"], mode, directory_mode)
    result: dict[str, Any] = {"changed": bool(changed or changed_dirs), "changed_files": changed, "unchanged_files": unchanged}
    result["changed_directories"] = changed_dirs
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
