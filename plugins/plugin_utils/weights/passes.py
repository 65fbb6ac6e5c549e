# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""One pass of the weights broadcast: who needs what, from which offset, in which chain order.

Input: the manifest and what every tray holds (model_weights_mark, or model_weights_info). Output: one relay spec per
member (index 0 = the source) and the problems that stop the pass before anything moves.
"""

from __future__ import annotations

import secrets
from typing import Any

from ansible_collections.wideep.gb200.plugins.module_utils._hub import source_problems as hub_source_problems

# The relay resumes a file at a whole chunk: the plan's start offsets use the relay's chunk.
from ansible_collections.wideep.gb200.plugins.module_utils._weights import CHUNK


def plan_pass(
    manifest: list[dict[str, Any]],
    infos: dict[str, dict[str, Any]],
    addresses: dict[str, str],
    *,
    source_host: str,
    source_dir: str,
    source_address: str,
    port: int,
    dest: str,
    fanout: bool = False,
    disk_margin: float = 0.01,
    what: str = "the weights",
    dest_var: str = "model_weights_dir",
    run_id: str = "",
) -> dict[str, Any]:
    """infos[host] = a model_weights_mark (or _info) result ({files: {path: {state, have, size}}, free_bytes}).

    run_id: the pass's identifier when the receivers were started with it already (model_weights_mark's
    receive); else a fresh one."""
    problems: list[str] = []
    needs: dict[str, list[str]] = {}
    starts: dict[str, int] = {}
    for host, info in infos.items():
        files = info.get("files", {})
        wanted = [e["path"] for e in manifest if files.get(e["path"], {}).get("state") != "complete"]
        if not wanted:
            continue
        missing = sum(e["size"] - int(files.get(e["path"], {}).get("have", 0)) for e in manifest if e["path"] in wanted)
        free = int(info.get("free_bytes", 0))
        if free < missing * (1 + disk_margin):
            problems.append(
                f"host {host}: {dest} needs {missing} more bytes for {what} but its filesystem has {free} free "
                f"({missing - free} short); free space there or set {dest_var} to a larger disk"
            )
        needs[host] = wanted
        for entry in manifest:
            if entry["path"] in wanted:
                have = int(files.get(entry["path"], {}).get("have", 0)) // CHUNK * CHUNK
                starts[entry["path"]] = min(starts.get(entry["path"], have), have)
    problems.extend(f"host {host}: no address in the plan (is it in group gb200?)" for host in needs if not addresses.get(host))
    receivers = [h for h in infos if h in needs]  # inventory order keeps racks together
    chain = [f"{source_address}:0"] + [f"{addresses.get(h, '')}:{port}" for h in receivers]
    run_id = run_id or secrets.token_hex(8)
    total = sum(e["size"] - starts[e["path"]] for e in manifest if e["path"] in starts)
    members = {h: {"index": i + 1, "needs": needs[h], "dest": dest} for i, h in enumerate(receivers)}
    return {
        "problems": problems,
        "run_id": run_id,
        "receivers": receivers,
        "members": members,
        "source": {"host": source_host, "dir": source_dir, "index": 0},
        "chain": chain,
        "starts": starts,
        "stream_bytes": total,
        "missing_bytes": {
            h: sum(e["size"] - int(infos[h]["files"].get(e["path"], {}).get("have", 0)) for e in manifest if e["path"] in needs[h]) for h in receivers
        },
        "fanout": fanout,
        "port": port,
    }


SOURCE_KEYS = {
    "path": {"type", "path", "host"},
    "controller": {"type", "path"},
    "hf": {"type", "repo", "revision", "path", "host", "endpoint", "include"},
}
SOURCE_FORMS = (
    "{type: path, path: /abs/dir, host: <tray>}, {type: controller, path: /abs/dir}, or "
    "{type: hf, repo: <owner>/<name>, revision: <40-hex commit>, path: /abs/dir, host: <tray>}"
)


def source_problems(source: Any) -> list[str]:
    """What is wrong with model_weights_source, one line per problem, each with the fix."""
    if not isinstance(source, dict) or source.get("type") not in SOURCE_KEYS:
        # Names only: a source someone put a token into is not echoed.
        got = f"type {source.get('type')!r} with keys {', '.join(sorted(map(str, source)))}" if isinstance(source, dict) else type(source).__name__
        return [f"model_weights_source must be {SOURCE_FORMS}; got {got}"]
    kind = str(source["type"])
    problems = [
        f"model_weights_source.{key} is not a setting of a {kind} source (it takes {', '.join(sorted(SOURCE_KEYS[kind]))}): remove it or fix its spelling"
        for key in sorted(set(source) - SOURCE_KEYS[kind])
    ]
    if kind == "hf":
        problems += hub_source_problems(source)
        include = source.get("include", [])
        if not isinstance(include, list) or not all(isinstance(pattern, str) for pattern in include):
            problems.append(f"model_weights_source.include must be a list of shell patterns, e.g. ['*.safetensors', '*.json']; got {include!r}")
    elif not str(source.get("path") or "").startswith("/"):
        problems.append(f"model_weights_source.path {source.get('path')!r} must be an absolute directory")
    return problems
