# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which package names dpkg-query can judge: the host_info module and its action plugin's shell read."""

from __future__ import annotations


def looked_up(name: str) -> bool:
    """A plain package name; one with a version, an architecture or a glob (=, :, *, <, >) is
    never looked up, so it counts as missing and apt (which can judge it) runs."""
    return not set(name) & set("=:*<>")
