# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start a relay on a tray with one run of the tray's Python, no module run (the action plugins of
model_weights_mark and model_weights_relay).

A module run costs a tray ~0.25 s of CPU (AnsiballZ, then ansible.module_utils.basic compiled from
source), which on eight trays sharing two cores is most of a broadcast's start. The relay needs
none of it: its module_utils (_weights, _relay, _relay_job) import only the standard library. They
are sent on stdin as source, compiled under their package name by BOOT, and an entry of
_relay_job (`boot_receiver`, `boot_relay`) starts the daemon as the module would and prints one
JSON line. The task's arguments were validated on the controller with the module's own spec.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.wideep.gb200.plugins.module_utils import _relay, _relay_job, _weights

ENTRIES = ("boot_receiver", "boot_relay")
BOOT = """
import json, sys, types
doc = json.load(sys.stdin)
pkg = "ansible_collections.wideep.gb200.plugins.module_utils"
parts = pkg.split(".")
for i in range(1, len(parts) + 1):
    package = types.ModuleType(".".join(parts[:i]))
    package.__path__ = []
    sys.modules[package.__name__] = package
for short in ("_weights", "_relay", "_relay_job"):
    module = types.ModuleType(pkg + "." + short)
    module.__package__ = pkg
    module.__file__ = "<wideep.gb200 " + short + ">"
    sys.modules[module.__name__] = module
    exec(compile(doc["sources"][short], module.__file__, "exec"), module.__dict__)
if doc["entry"] not in ("boot_receiver", "boot_relay"):
    raise SystemExit("unknown entry")
print(json.dumps(getattr(sys.modules[pkg + "._relay_job"], doc["entry"])(doc["call"])))
"""
_SOURCES = {"_weights": _weights, "_relay": _relay, "_relay_job": _relay_job}


def python_of(action: ActionBase, task_vars: dict[str, Any]) -> str | None:
    """The tray's Python as the inventory or an earlier module's discovery names it; None leaves
    interpreter discovery to the module."""
    if action._task.delegate_to:  # the delegated host's, as ActionBase._configure_module takes them
        task_vars = (task_vars.get("ansible_delegated_vars") or {}).get(action._task.delegate_to) or {}
    python = task_vars.get("ansible_python_interpreter") or (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
    if python is not None:
        python = action._templar.template(python)
    if not isinstance(python, str) or not python.startswith("/") or set(python) & {"{", "\n", " "}:
        return None
    return python


def boot(action: ActionBase, task_vars: dict[str, Any], entry: str, call: dict[str, Any]) -> dict[str, Any] | None:
    """What the entry returned ({"failed": True, "msg": ...} when it could not start), or None when
    nothing was started and the module is to run (no interpreter known yet, no such Python)."""
    if entry not in ENTRIES:
        raise ValueError(f"no boot entry {entry}")
    python = python_of(action, task_vars)
    if python is None:
        return None
    doc = {"sources": {short: Path(str(module.__file__)).read_text(encoding="utf-8") for short, module in _SOURCES.items()}, "entry": entry, "call": call}
    # Called through ActionBase: ansible-core leaves it unannotated (pyproject: untyped_calls_exclude).
    ran = ActionBase._low_level_execute_command(action, f"{shlex.quote(python)} -c {shlex.quote(BOOT)}", in_data=json.dumps(doc).encode())
    lines = str(ran.get("stdout", "")).strip().splitlines()
    try:
        started = json.loads(lines[-1]) if lines else None
    except ValueError:
        started = None
    if isinstance(started, dict):
        return started
    if ran.get("rc") != 0 and not lines:
        return None  # nothing started (no such Python, say): the module runs and says why
    return {"failed": True, "msg": f"starting the relay gave no answer (rc {ran.get('rc')}): {ran.get('stderr', '')!s}"[:2000]}
