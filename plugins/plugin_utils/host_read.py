# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One shell read of a host (no Python there), for the action plugins of read-only modules.

A module run costs a tray about 250 ms of CPU (ansible-core's module_utils compiled and imported
from the AnsiballZ zip, which carries no bytecode); a rack's no-op run pays that on 18 trays per
task. This read costs a tray a few forks of sh, dpkg-query, base64 and docker. It answers what
wideep.gb200.host_info answers (dpkg states, what paths are, small files' content, images,
containers' states); an action that gets None back runs its module instead, which gives the same
answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._packages import looked_up

# host_info's options: any other key (a typo) goes to the module, which refuses it by name.
OPTIONS = ("packages", "paths", "contents", "images", "container_states")


def _script(packages: list[str], paths: list[str], contents: list[str], images: list[str] | None = None, containers: list[str] | None = None) -> str:
    """The read as one POSIX sh script (values quoted into it; only names and paths, never content)."""
    lines = ["set -u"]
    if packages:
        quoted = " ".join(shlex.quote(p) for p in packages)
        # exit 1 names packages dpkg does not know: those are missing
        lines.append(f"dpkg-query --show --showformat 'P ${{Package}}\\t${{db:Status-Abbrev}}\\n' -- {quoted} 2>/dev/null; [ $? -le 1 ] || exit 3")
    for index, path in enumerate(paths):
        q = shlex.quote(path)
        lines.append(
            f'if [ -L {q} ]; then printf \'S {index} link %s %s\\n\' "$([ -e {q} ] && echo 1 || echo 0)" "$(readlink -n -- {q} | base64 -w0)"; '
            f"elif [ -f {q} ]; then echo 'S {index} file'; elif [ -d {q} ]; then echo 'S {index} directory'; "
            f"elif [ -e {q} ]; then echo 'S {index} other'; else echo 'S {index} absent'; fi"
        )
    for index, path in enumerate(contents):
        q = shlex.quote(path)
        lines.append(f"if [ -f {q} ] && [ -r {q} ]; then printf 'C {index} %s\\n' \"$(base64 -w0 < {q})\" || exit 3; else echo 'C {index} -'; fi")
    for index, ref in enumerate(images or []):
        q = shlex.quote(ref)
        # `docker image inspect` prints what the Engine API's image inspect returns (what
        # community.docker.docker_image_info returns); "No such image" is an answer, any other
        # failure (no daemon, no permission) makes the module answer instead.
        lines.append(
            f"if out=$(docker image inspect -- {q} 2>/dev/null); then printf 'I {index} %s\\n' \"$(printf '%s' \"$out\" | base64 -w0)\"; "
            f"elif docker image inspect -- {q} 2>&1 >/dev/null | grep -qi 'no such image'; then echo 'I {index} -'; else exit 3; fi"
        )
    for index, name in enumerate(containers or []):
        q = shlex.quote(name)
        # Only the State: a container's whole description holds its environment (secrets included).
        lines.append(
            f"if out=$(docker container inspect --format '{{{{json .State}}}}' -- {q} 2>/dev/null); then "
            f"printf 'K {index} %s\\n' \"$(printf '%s' \"$out\" | base64 -w0)\"; "
            f"elif docker container inspect -- {q} 2>&1 >/dev/null | grep -qi 'no such container'; then echo 'K {index} -'; else exit 3; fi"
        )
    lines.append("echo E")
    return "\n".join(lines) + "\n"


def _decode(text: str) -> str:
    return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8", errors="replace")


def parse(
    packages: list[str], paths: list[str], contents: list[str], output: str, images: list[str] | None = None, containers: list[str] | None = None
) -> dict[str, Any] | None:
    """The module's result (less `changed`) from the script's output; None when the output is not what the script
    prints (then the module answers)."""
    lines = output.splitlines()
    if not lines or lines[-1] != "E":
        return None
    status: dict[str, str] = {}
    seen_paths: dict[str, dict[str, Any]] = {}
    seen_contents: dict[str, str | None] = {}
    seen_images: dict[int, list[Any]] = {}
    seen_states: dict[str, Any] = {}
    try:
        for line in lines[:-1]:
            kind, _sep, rest = line.partition(" ")
            if kind == "P":
                name, _tab, state = rest.partition("\t")
                status[name] = state
            elif kind == "S":
                fields = rest.split(" ")
                path = paths[int(fields[0])]
                if fields[1] == "link" and fields[2] in ("0", "1"):
                    seen_paths[path] = {"type": "link", "exists": fields[2] == "1", "target": _decode(fields[3] if len(fields) > 3 else "")}
                elif fields[1] in ("file", "directory", "other", "absent") and len(fields) == 2:
                    seen_paths[path] = {"type": fields[1], "exists": fields[1] != "absent"}
                else:
                    return None
            elif kind == "I":
                fields = rest.split(" ")
                found = [] if fields[1] == "-" else json.loads(_decode(fields[1]))
                if int(fields[0]) >= len(images or []) or not isinstance(found, list):
                    return None
                seen_images[int(fields[0])] = found
            elif kind == "K":
                fields = rest.split(" ")
                seen_states[(containers or [])[int(fields[0])]] = None if fields[1] == "-" else json.loads(_decode(fields[1]))
            elif kind == "C":
                fields = rest.split(" ")
                seen_contents[contents[int(fields[0])]] = None if fields[1] == "-" else _decode(fields[1])
            else:
                return None
    except (IndexError, ValueError, binascii.Error):  # json.JSONDecodeError is a ValueError
        return None
    answered = len(seen_images) == len(images or []) and set(seen_states) == set(containers or [])
    if set(seen_paths) != set(paths) or set(seen_contents) != set(contents) or not answered:
        return None
    installed = [p for p in packages if looked_up(p) and status.get(p, "").startswith("ii")]
    return {
        "installed_packages": installed,
        "missing_packages": [p for p in packages if p not in installed],
        "paths": seen_paths,
        "contents": seen_contents,
        "images": [image for index in sorted(seen_images) for image in seen_images[index]],
        "container_states": {name: seen_states[name] for name in containers or []},
    }


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) and v and "\n" not in v for v in value):
        return list(value)
    return None


def plain_args(args: dict[str, Any]) -> tuple[list[str], list[str], list[str], list[str], list[str]] | None:
    """(packages, paths, contents, images, container_states) when the shell read can answer for
    them: lists of strings, and absolute paths without what the module would expand (type path:
    ~ and $VARS)."""
    if not set(args) <= set(OPTIONS):
        return None
    lists = [_strings(args.get(key)) for key in OPTIONS]
    packages, paths, contents, images, containers = lists
    if packages is None or paths is None or contents is None or images is None or containers is None:
        return None
    if any(set(p) & {"~", "$"} or not p.startswith("/") for p in [*paths, *contents]):
        return None
    return packages, paths, contents, images, containers


def shell_read(
    action: ActionBase, packages: list[str], paths: list[str], contents: list[str], images: list[str] | None = None, containers: list[str] | None = None
) -> dict[str, Any] | None:
    """host_info's answer from one `sh -s` on the action's host (become applies as to a module), or None."""
    script = _script(packages, paths, contents, images, containers)
    # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
    read = ActionBase._low_level_execute_command(action, "/bin/sh -s", in_data=script.encode())
    if read.get("rc") != 0:
        return None
    return parse(packages, paths, contents, str(read.get("stdout", "")), images, containers)
