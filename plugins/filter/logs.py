# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Private filter of the smoke and logs roles over plugins/module_utils/_scrub.

Users call it not; it is _-prefixed and undocumented, as the serve filters are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.wideep.gb200.plugins.module_utils._scrub import scrub, secret_pairs


def gb200_scrub(text: Any, secrets: Mapping[str, Any] | None = None) -> str:
    """text | wideep.gb200._scrub(gb200_secret_env): every secret value and credential-shaped string replaced."""
    return scrub(str(text), secret_pairs(secrets))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"_scrub": gb200_scrub}
