# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The loaded NVIDIA kernel driver as /proc/driver/nvidia describes it: the one reader of that fact.

PRIVATE to the collection: may change at any time. gpu_info (preflight) and nvidia_driver_info (the
gpu_driver and imex roles) read the driver through it on the trays; the roles' filters render module
options with it on the controller. Standard library only: it travels to the trays inside the modules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

PROC_DIR = "/proc/driver/nvidia"

# Open:        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)"
# Proprietary: "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024"
#              (some builds name the arch after the words instead: "... UNIX Kernel Module for aarch64  535...")
_NVRM = re.compile(
    r"^NVRM version:\s*NVIDIA UNIX\s+(?:(?P<open>Open)\s+)?(?:(?P<parch>\S+)\s+)?Kernel Module(?:\s+for\s+(?P<arch>\S+))?"
    r"\s+(?P<version>\d+(?:\.\d+)+)\b",
    re.MULTILINE,
)
# "EnableStreamMemOPs: 0", 'RegistryDwords: ""', 'RegistryDwords: "PeerMappingOverride=1;"'
_PARAM = re.compile(r"^(?P<name>[A-Za-z0-9_]+):\s*(?P<value>.*?)\s*$")


def driver_branch(version: str | None) -> int | None:
    """'580.159.04' -> 580 (the branch is the version's major number)."""
    match = re.match(r"(\d+)\.", version or "")
    return int(match.group(1)) if match else None


def parse_version(text: str | None) -> dict[str, Any]:
    """/proc/driver/nvidia/version -> {present, flavor, version, branch, arch, line (its first line)}.

    flavor: "open" or "proprietary" kernel module; "unknown" when the file says something this does
    not recognise; None (and present false) when there is no file or it is empty: no driver loaded.
    """
    if not text or not text.strip():
        return {"present": False, "flavor": None, "version": None, "branch": None, "arch": None, "line": ""}
    first = text.strip().splitlines()[0].strip()
    match = _NVRM.search(text)
    if match is None:
        return {"present": True, "flavor": "unknown", "version": None, "branch": None, "arch": None, "line": first}
    version = match.group("version")
    return {
        "present": True,
        "flavor": "open" if match.group("open") else "proprietary",
        "version": version,
        "branch": driver_branch(version),
        "arch": match.group("arch") or match.group("parch"),
        "line": first,
    }


def parse_params(text: str | None) -> dict[str, str]:
    """/proc/driver/nvidia/params as {name: value}, string values unquoted."""
    params: dict[str, str] = {}
    for line in (text or "").splitlines():
        match = _PARAM.match(line)
        if match is None:
            continue
        value = match.group("value")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[match.group("name")] = value
    return params


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def read_driver(proc_dir: str = PROC_DIR) -> dict[str, Any]:
    """parse_version of PROC_DIR/version, plus the parameters of PROC_DIR/params ({} without a driver)."""
    info = parse_version(_read(os.path.join(proc_dir, "version")))
    info["params"] = parse_params(_read(os.path.join(proc_dir, "params")))
    return info


def check_driver(info: Mapping[str, Any], min_branch: int, source: str = PROC_DIR + "/version") -> dict[str, Any]:
    """Whether the loaded driver is the open kernel module of branch >= min_branch.

    Returns {"ok": bool, "state": absent|unknown|proprietary|too_old|ok, "message": str}.
    """
    if not info.get("present"):
        return {"ok": False, "state": "absent", "message": f"no NVIDIA kernel driver is loaded ({source} does not exist or is empty)"}
    if info.get("flavor") == "unknown" or info.get("branch") is None:
        return {"ok": False, "state": "unknown", "message": f"cannot read the driver version from {source}: {info.get('line')!r}"}
    version = info["version"]
    if info.get("flavor") != "open":
        return {
            "ok": False,
            "state": "proprietary",
            "message": f"the loaded driver {version} is the proprietary kernel module; Blackwell (GB200) runs only the open kernel modules",
        }
    if int(info["branch"]) < int(min_branch):
        return {
            "ok": False,
            "state": "too_old",
            "message": f"the loaded open driver {version} is branch {info['branch']}, older than the required branch {min_branch}",
        }
    return {"ok": True, "state": "ok", "message": f"open kernel module {version} (branch {info['branch']} >= {min_branch})"}


def option_value(value: Any) -> str:
    """A module option as the driver shows it in params: booleans are 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def modprobe_options(module: str, options: Mapping[str, Any], prefix: str = "NVreg_") -> str:
    """One `options` line for /etc/modprobe.d: {"EnableStreamMemOPs": 1} -> options nvidia NVreg_EnableStreamMemOPs=1.

    Values with characters the shell-like modprobe parser splits on (space, ';', '"') are quoted,
    as NVIDIA documents RegistryDwords="PeerMappingOverride=1;".
    """
    if not options:
        raise ValueError("modprobe_options: no options given")
    parts = []
    for name, value in options.items():
        text = option_value(value)
        if '"' in text:
            raise ValueError(f"modprobe_options: the value of {name} may not contain a double quote: {text!r}")
        if not text or any(c in text for c in " \t;="):
            text = f'"{text}"'
        parts.append(f"{prefix}{name}={text}")
    return f"options {module} " + " ".join(parts)


def pending_params(params: Mapping[str, str], wanted: Mapping[str, Any]) -> list[str]:
    """The wanted driver parameters the loaded driver does not run with yet (they need a reload or reboot).

    Empty when the driver is not loaded (params empty): nothing is running with the old values.
    """
    if not params:
        return []
    out = []
    for name, value in wanted.items():
        want = option_value(value)
        have = params.get(name)
        if have is None:
            out.append(f"{name}: the loaded driver has no such parameter (wanted {want!r})")
        elif have != want:
            out.append(f"{name}: loaded {have!r}, configured {want!r}")
    return out
