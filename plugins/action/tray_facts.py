# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wideep.gb200.tray_facts: setup's distribution and platform facts from one shell read (no Python
on the tray) where the values are certain, a Debian point release on x86_64 or aarch64; the
module (setup's own collectors) runs anywhere else, and when the read is not what it expects."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils._tray_facts import ARGUMENT_SPEC, KEYS, unsupported
from ansible_collections.wideep.gb200.plugins.plugin_utils.host_read import file_line

MODULE = "wideep.gb200.tray_facts"
SCRIPT = (
    "\n".join(
        [
            "set -u",
            file_line("O", "/etc/os-release"),
            file_line("V", "/etc/debian_version"),
            'printf \'U %s %s %s\\n\' "$(uname -s)" "$(uname -r)" "$(uname -m)"',
            "echo E",
        ]
    )
    + "\n"
)


def os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), quotes removed (a value with escapes or unbalanced quotes is left out)."""
    out = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(?:\"([^\"\\`$]*)\"|'([^']*)'|([^\"'\\`$\s]*))", line.strip())
        if match:
            out[match.group(1)] = next(g for g in match.groups()[1:] if g is not None)
    return out


def facts_from(output: str) -> dict[str, str] | None:
    """The facts from the script's output, or None where setup's answer is not certain from it."""
    lines = output.splitlines()
    if not lines or lines[-1] != "E":
        return None
    got: dict[str, str] = {}
    try:
        for line in lines[:-1]:
            tag, _sep, rest = line.partition(" ")
            if tag in ("O", "V"):
                got[tag] = "" if rest == "-" else base64.b64decode(rest, validate=True).decode("utf-8")
            elif tag == "U":
                got["U"] = rest
            else:
                return None
    except (binascii.Error, UnicodeDecodeError):
        return None
    uname = got.get("U", "").split(" ")
    if len(uname) != 3 or uname[0] != "Linux" or uname[2] not in ("x86_64", "aarch64") or not uname[1]:
        return None
    release = os_release(got.get("O", ""))
    point = got.get("V", "").strip()
    major, codename = release.get("VERSION_ID", ""), release.get("VERSION_CODENAME", "")
    pretty = re.search(r"\(([^)]+?)\)", release.get("PRETTY_NAME", ""))
    # setup: Debian, the point release from debian_version (distro's best version), the codename
    # from PRETTY_NAME; anything less plain (testing, sid, a derivative, lsb_release) is setup's.
    if release.get("ID") != "debian" or "ID_LIKE" in release or not re.fullmatch(r"\d+", major) or not re.fullmatch(rf"{major}\.\d+", point):
        return None
    if not codename or pretty is None or pretty.group(1) != codename or "Debian" not in release.get("NAME", ""):
        return None
    return {
        "distribution": "Debian",
        "distribution_version": point,
        "distribution_major_version": major,
        "distribution_release": codename,
        "os_family": "Debian",
        "system": "Linux",
        "kernel": uname[1],
        "machine": uname[2],
        "architecture": uname[2],
    }


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(dict(self._task.args))
        if checked.error_messages:
            # The module refuses the arguments by name.
            result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
            return result
        params = checked.validated_parameters
        known = (task_vars or {}).get("ansible_facts") or {}
        if params["reuse"] and all(key in known for key in KEYS):
            # A role's check in a run that has the facts already (tray_facts, setup): no tray read.
            return self._judged(result, {key: known[key] for key in KEYS}, params, answer={})
        # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
        read = ActionBase._low_level_execute_command(self, "/bin/sh -s", in_data=SCRIPT.encode())
        facts = facts_from(str(read.get("stdout", ""))) if read.get("rc") == 0 else None
        if facts is not None:
            return self._judged(result, facts, params, answer=facts)
        result.update(self._execute_module(module_name=MODULE, module_args=dict(self._task.args), task_vars=task_vars))
        return result

    @staticmethod
    def _judged(result: dict[str, Any], facts: dict[str, Any], params: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """The module's answer for these facts: its failure message where the role does not support them."""
        problem = unsupported(facts, params["role"], params["supported_distributions"], params["supported_architectures"])
        result.update(changed=False, ansible_facts=answer)
        if problem is not None:
            result.update(failed=True, msg=problem)
        return result
