# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The facts wideep.gb200.tray_facts sets: those the provisioning roles read, named as setup names them."""

from __future__ import annotations

ARGUMENT_SPEC = {
    "supported_distributions": {"type": "list", "elements": "str", "default": []},
    "supported_architectures": {"type": "list", "elements": "str", "default": []},
    "role": {"type": "str", "default": "wideep.gb200"},
    "reuse": {"type": "bool", "default": False},
}
"""The module's options (the action validates a task's arguments with it before it answers)."""

KEYS = (
    "distribution",
    "distribution_version",
    "distribution_major_version",
    "distribution_release",
    "os_family",
    "system",
    "kernel",
    "machine",
    "architecture",
)


def unsupported(facts: dict[str, str], role: str, distributions: list[str], architectures: list[str]) -> str | None:
    """Why a role cannot run on a tray with these facts (its message, as the roles word it), or None.

    distributions are "Name Major" (as ansible_facts names them: "Debian 12", "Ubuntu 24.04");
    an empty list accepts any (and architectures likewise).
    """
    name = f"{facts.get('distribution', '?')} {facts.get('distribution_major_version', '?')}"
    architecture = facts.get("architecture", "?")
    if (not distributions or name in distributions) and (not architectures or architecture in architectures):
        return None
    supports = ", ".join(distributions) if distributions else "any distribution"
    runs = f"{facts.get('distribution', '?')} {facts.get('distribution_version', '?')}"
    if architectures:
        supports += f" on {', '.join(architectures)}"
        runs += f" on {architecture}"
    return f"{role} supports {supports}; this tray runs {runs}"
