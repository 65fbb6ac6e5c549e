# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One shell read of a host (no Python there), for the action plugins of read-only modules.

A module run costs a tray about 250 ms of CPU (ansible-core's module_utils compiled and imported
from the AnsiballZ zip, which carries no bytecode); a rack's no-op run pays that on 18 trays per
task. This read costs a tray a few forks of sh, dpkg-query, base64 and docker. It answers what
wideep.gb200.host_info answers (dpkg states, what paths are, small files' content, images,
containers' states and labels, the GPUs' compute capability); an action that gets None back runs its module instead, which gives the same
answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import shlex
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._container_read import CONTAINER_FORMAT, STATE_FORMAT
from ansible_collections.wideep.gb200.plugins.module_utils._gpu_info import COMPUTE_CAP_QUERY, parse_compute_caps
from ansible_collections.wideep.gb200.plugins.module_utils._packages import looked_up

# host_info's options: any other key (a typo) goes to the module, which refuses it by name.
LISTS = ("packages", "paths", "contents", "images", "container_states", "containers")
OPTIONS = (*LISTS, "compute_capabilities")


Ask = dict[str, Any]  # option -> its list (LISTS), and compute_capabilities: bool


def _inspect_lines(tag: str, names: list[str], template: str) -> list[str]:
    """One `docker container inspect --format` per name: "No such container" is an answer (-), any
    other failure (no daemon, no permission) makes the module answer instead."""
    lines = []
    fmt = shlex.quote(template)
    for index, name in enumerate(names):
        q = shlex.quote(name)
        lines.append(
            f"if out=$(docker container inspect --format {fmt} -- {q} 2>/dev/null); then "
            f"printf '{tag} {index} %s\\n' \"$(printf '%s' \"$out\" | base64 -w0)\"; "
            f"elif docker container inspect -- {q} 2>&1 >/dev/null | grep -qi 'no such container'; then echo '{tag} {index} -'; else exit 3; fi"
        )
    return lines


def file_line(tag: str, path: str) -> str:
    """A sh line that prints `TAG <the file's content, base64>`, or `TAG -` when it is not a readable
    file (a failing base64 exits 3: no answer). The actions' shell reads share it."""
    q = shlex.quote(path)
    return f"if [ -f {q} ] && [ -r {q} ]; then printf '{tag} %s\\n' \"$(base64 -w0 < {q})\" || exit 3; else echo '{tag} -'; fi"


def _script(ask: Ask) -> str:
    """The read as one POSIX sh script (values quoted into it; only names and paths, never content)."""
    lines = ["set -u"]
    if ask["packages"]:
        quoted = " ".join(shlex.quote(p) for p in ask["packages"])
        # exit 1 names packages dpkg does not know: those are missing
        lines.append(f"dpkg-query --show --showformat 'P ${{Package}}\\t${{db:Status-Abbrev}}\\n' -- {quoted} 2>/dev/null; [ $? -le 1 ] || exit 3")
    for index, path in enumerate(ask["paths"]):
        q = shlex.quote(path)
        lines.append(
            f'if [ -L {q} ]; then printf \'S {index} link %s %s\\n\' "$([ -e {q} ] && echo 1 || echo 0)" "$(readlink -n -- {q} | base64 -w0)"; '
            f"elif [ -f {q} ]; then echo 'S {index} file'; elif [ -d {q} ]; then echo 'S {index} directory'; "
            f"elif [ -e {q} ]; then echo 'S {index} other'; else echo 'S {index} absent'; fi"
        )
    lines += [file_line(f"C {index}", path) for index, path in enumerate(ask["contents"])]
    for index, ref in enumerate(ask["images"]):
        q = shlex.quote(ref)
        # `docker image inspect` prints what the Engine API's image inspect returns (what
        # community.docker.docker_image_info returns); "No such image" is an answer, any other
        # failure (no daemon, no permission) makes the module answer instead.
        lines.append(
            f"if out=$(docker image inspect -- {q} 2>/dev/null); then printf 'I {index} %s\\n' \"$(printf '%s' \"$out\" | base64 -w0)\"; "
            f"elif docker image inspect -- {q} 2>&1 >/dev/null | grep -qi 'no such image'; then echo 'I {index} -'; else exit 3; fi"
        )
    lines += _inspect_lines("K", ask["container_states"], STATE_FORMAT)
    lines += _inspect_lines("D", ask["containers"], CONTAINER_FORMAT)
    if ask["compute_capabilities"]:
        # The module looks for nvidia-smi in PATH and the sbin directories too (get_bin_path);
        # without it, or when its query fails, the answer is no GPU ({}), as there.
        query = " ".join(COMPUTE_CAP_QUERY)
        lines.append(
            f'if smi=$(PATH="$PATH:/sbin:/usr/sbin:/usr/local/sbin" command -v nvidia-smi) && out=$("$smi" {query} 2>/dev/null); then '
            f"printf 'G %s\\n' \"$(printf '%s' \"$out\" | base64 -w0)\"; else echo 'G -'; fi"
        )
    lines.append("echo E")
    return "\n".join(lines) + "\n"


def _decode(text: str) -> str:
    return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8", errors="replace")


def parse(ask: Ask, output: str) -> dict[str, Any] | None:
    """The module's result (less `changed`) from the script's output; None when the output is not what the script
    prints (then the module answers)."""
    lines = output.splitlines()
    if not lines or lines[-1] != "E":
        return None
    paths, contents, images = ask["paths"], ask["contents"], ask["images"]
    status: dict[str, str] = {}
    seen_paths: dict[str, dict[str, Any]] = {}
    seen_contents: dict[str, str | None] = {}
    seen_images: dict[int, list[Any]] = {}
    seen: dict[str, dict[str, Any]] = {"K": {}, "D": {}}
    caps: dict[str, str] | None = None
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
                if int(fields[0]) >= len(images) or not isinstance(found, list):
                    return None
                seen_images[int(fields[0])] = found
            elif kind in seen:
                fields = rest.split(" ")
                names = ask["container_states"] if kind == "K" else ask["containers"]
                seen[kind][names[int(fields[0])]] = None if fields[1] == "-" else json.loads(_decode(fields[1]))
            elif kind == "G":
                caps = {} if rest == "-" else parse_compute_caps(_decode(rest))
            elif kind == "C":
                fields = rest.split(" ")
                seen_contents[contents[int(fields[0])]] = None if fields[1] == "-" else _decode(fields[1])
            else:
                return None
    except (IndexError, ValueError, binascii.Error):  # json.JSONDecodeError is a ValueError
        return None
    answered = len(seen_images) == len(images) and set(seen["K"]) == set(ask["container_states"]) and set(seen["D"]) == set(ask["containers"])
    answered = answered and (caps is not None) == bool(ask["compute_capabilities"])
    if set(seen_paths) != set(paths) or set(seen_contents) != set(contents) or not answered:
        return None
    packages = ask["packages"]
    installed = [p for p in packages if looked_up(p) and status.get(p, "").startswith("ii")]
    return {
        "installed_packages": installed,
        "missing_packages": [p for p in packages if p not in installed],
        "paths": seen_paths,
        "contents": seen_contents,
        "images": [image for index in sorted(seen_images) for image in seen_images[index]],
        "container_states": {name: seen["K"][name] for name in ask["container_states"]},
        "containers": {name: seen["D"][name] for name in ask["containers"]},
        "compute_capabilities": caps or {},
    }


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) and v and "\n" not in v for v in value):
        return list(value)
    return None


def plain_args(args: dict[str, Any]) -> Ask | None:
    """Every option's list when the shell read can answer for them: lists of strings, and absolute
    paths without what the module would expand (type path: ~ and $VARS)."""
    if not set(args) <= set(OPTIONS):
        return None
    caps = args.get("compute_capabilities", False)
    if not isinstance(caps, bool):
        return None  # "yes", "true": the module's bool conversion answers for those
    ask: Ask = {"compute_capabilities": caps}
    for key in LISTS:
        value = _strings(args.get(key))
        if value is None:
            return None
        ask[key] = value
    if any(set(p) & {"~", "$"} or not p.startswith("/") for p in [*ask["paths"], *ask["contents"]]):
        return None
    return ask


def shell_read(action: ActionBase, ask: Ask) -> dict[str, Any] | None:
    """host_info's answer from one `sh -s` on the action's host (become applies as to a module), or None."""
    script = _script(ask)
    # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
    read = ActionBase._low_level_execute_command(action, "/bin/sh -s", in_data=script.encode())
    if read.get("rc") != 0:
        return None
    return parse(ask, str(read.get("stdout", "")))
