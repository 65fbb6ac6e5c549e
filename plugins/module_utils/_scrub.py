# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Remove secrets from collected text before it is kept anywhere (logs, inspect output, archives).

Two passes, in this order: every known secret value (gb200_secret_env's values) becomes
``[REDACTED:NAME]``; then anything shaped like a credential (a Hugging Face token, an HTTP
``Authorization: Bearer``/``Basic`` value, a GitHub or NGC key, ``PASSWORD=...`` style
assignments) becomes ``[REDACTED]``. Used by the logs_info module on the tray and again by the
logs_archive action on the controller: a value is scrubbed before it is returned and before it
is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MARKER = "[REDACTED]"
# Shorter values are too likely to be ordinary words or numbers; the plan refuses none, so a
# short secret is still scrubbed where it stands alone as a NAME=value assignment (below).
MIN_SECRET_LEN = 6

# (pattern, replacement): group 1, where present, is kept (the name or the header word).
_SHAPES = (
    # Hugging Face user access tokens: hf_ + 30 or more letters/digits.
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), MARKER),
    # GitHub tokens, NGC / NVIDIA API keys.
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), MARKER),
    (re.compile(r"\bnvapi-[A-Za-z0-9_-]{20,}"), MARKER),
    # Authorization header values.
    (re.compile(r"(?i)(\b(?:bearer|basic)\s+)(?!\[REDACTED)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MARKER),
    # NAME=value / "NAME": "value" where NAME says it is secret.
    (re.compile(r"(?i)((?:token|secret|password|passwd|api_key|apikey|credentials)=)(?!\[REDACTED)[^\s\"',;&]+"), r"\1" + MARKER),
    (re.compile(r"(?i)((?:token|secret|password|passwd|api_key|apikey)\"\s*:\s*\")(?!\[REDACTED)[^\"]+"), r"\1" + MARKER),
)
_SECRET_NAME = re.compile(r"(?i)token|secret|password|passwd|api_?key|credential")


def secret_pairs(secrets: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(name, value) of every secret long enough to scrub, longest value first (so that a value
    containing another is replaced whole)."""
    pairs = [(str(k), str(v)) for k, v in (secrets or {}).items() if v is not None and len(str(v)) >= MIN_SECRET_LEN]
    return sorted(pairs, key=lambda kv: (-len(kv[1]), kv[0]))


def scrub(text: str, secrets: list[tuple[str, str]]) -> str:
    """``text`` with every secret value and every credential-shaped string replaced."""
    for name, value in secrets:
        if value in text:
            text = text.replace(value, f"[REDACTED:{name}]")
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return text


def scrub_env(env: list[str], secrets: list[tuple[str, str]]) -> list[str]:
    """A container's ``Config.Env`` (NAME=value strings) with secret values hidden: a NAME that
    says it is secret, or a value gb200_secret_env holds, keeps only its name."""
    out = []
    for item in env:
        name, sep, value = item.partition("=")
        if sep and (_SECRET_NAME.search(name) or any(value == secret for _name, secret in secrets)):
            out.append(f"{name}={MARKER}")
        else:
            out.append(scrub(item, secrets))
    return out


def scrub_data(data: Any, secrets: list[tuple[str, str]]) -> Any:
    """Every string of a JSON-like structure (keys too) scrubbed."""
    if isinstance(data, str):
        return scrub(data, secrets)
    if isinstance(data, Mapping):
        return {scrub(str(k), secrets): scrub_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [scrub_data(v, secrets) for v in data]
    return data
