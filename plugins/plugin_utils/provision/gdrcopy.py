# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""gdrcopy: what DKMS reports about the gdrdrv module, and the libgdrapi version of a source tree.

PRIVATE to the collection: may change at any time. Used by the gdrcopy role.
"""

from __future__ import annotations

import re
from typing import Any

# dkms 3.x: "gdrdrv/2.5.1, 6.1.0-50-amd64, x86_64: installed" and "gdrdrv/2.5.1: added"
# dkms 2.x: "gdrdrv, 2.5.1, 5.15.0-91-generic, x86_64: installed" and "gdrdrv, 2.5.1: added"
# Either may append a note: "installed (WARNING! Diff between built and installed module!)".
_DKMS3 = re.compile(r"^(?P<module>[^/,\s]+)/(?P<version>[^,:\s]+)(?:,\s*(?P<kernel>[^,\s]+),\s*(?P<arch>[^:\s]+))?:\s*(?P<state>\w+)")
_DKMS2 = re.compile(r"^(?P<module>[^/,\s]+),\s*(?P<version>[^,:\s]+)(?:,\s*(?P<kernel>[^,\s]+),\s*(?P<arch>[^:\s]+))?:\s*(?P<state>\w+)")
_API = re.compile(r"^\s*#define\s+GDR_API_(?P<part>MAJOR|MINOR)_VERSION\s+(?P<value>\d+)", re.MULTILINE)


def dkms_status(text: str | None, module: str) -> dict[str, dict[str, Any]]:
    """`dkms status` for one module: {version: {"kernels": {kernel: state}}}; a version that is only added has no kernels."""
    out: dict[str, dict[str, Any]] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        match = _DKMS3.match(line) or _DKMS2.match(line)
        if match is None or match.group("module") != module:
            continue
        entry = out.setdefault(match.group("version"), {"kernels": {}})
        if match.group("kernel"):
            entry["kernels"][match.group("kernel")] = match.group("state")
    return out


def gdrapi_version(header: str | None) -> str:
    """libgdrapi's API version ("2.5") from include/gdrapi.h; it names the library file libgdrapi.so.2.5."""
    parts = {m.group("part"): m.group("value") for m in _API.finditer(header or "")}
    if "MAJOR" not in parts or "MINOR" not in parts:
        raise ValueError("gdrapi.h defines no GDR_API_MAJOR_VERSION / GDR_API_MINOR_VERSION: is this a gdrcopy source tree?")
    return f"{parts['MAJOR']}.{parts['MINOR']}"
