#!/usr/bin/python
# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_weights_hf
short_description: A Hugging Face Hub model at a pinned commit, downloaded once, verified, and its manifest
description:
  - Lists O(repo) at the commit O(revision) on the Hub, downloads the files this host does not hold yet
    into O(path) (resuming partial downloads), and checks every file against the Hub, LFS files by their
    sha256 and the others by their git blob id.
  - A file is written under a partial name and renamed into place only once it verified, so O(path)
    never holds a partial or wrong file under its final name.
  - Returns the manifest (path, size, sha256 of every file of the commit) that the broadcast to the other
    trays is checked against, cross-checked with the Hub's LFS sha256 values, and checks that the
    safetensors index agrees with it.
  - Needs only Python's standard library on the host.
version_added: 0.1.0
author:
  - wideep.gb200 authors (@wideep-gb200)
attributes:
  check_mode:
    support: full
    description: Lists the commit and hashes what is present; downloads and writes nothing.
  diff_mode:
    support: none
    description: Nothing to show.
  platform:
    platforms: posix
    support: full
    description: Runs on POSIX hosts.
options:
  endpoint:
    description: The Hub, or a mirror that speaks its HTTP interface.
    type: str
    default: https://huggingface.co
  repo:
    description: The model id, C(owner/name).
    type: str
    required: true
  revision:
    description: The commit (40 hex digits). Branches and tags are refused, so every run gets the same bytes.
    type: str
    required: true
  token:
    description: A Hub access token for gated or private models. Sent to O(endpoint)'s host only, never logged or written.
    type: str
  path:
    description: Where this host keeps the downloaded copy.
    type: path
    required: true
  include:
    description: Only files matching one of these shell patterns (all files when empty).
    type: list
    elements: str
    default: []
  workers:
    description: Files downloaded at once.
    type: int
    default: 8
  retries:
    description: Times a dropped download is resumed (with an HTTP range from what arrived) before the file fails.
    type: int
    default: 3
  cache:
    description: JSON file keeping the hashes between runs, so present files are not hashed again.
    type: path
  progress_path:
    description: Where to write the download's bytes, rate and ETA every second (the wideep.gb200.relay_wait action reads it).
    type: path
"""

EXAMPLES = r"""
- name: DeepSeek-R1 from the Hub, once, on the first tray
  wideep.gb200.model_weights_hf:
    repo: deepseek-ai/DeepSeek-R1
    revision: 56d4cbbb4d29f4355bab4b9a39ccb717a14ad5ad
    token: "{{ model_weights_hf_token }}"
    path: /raid/hf/DeepSeek-R1
    cache: /var/lib/wideep/manifest-hf-DeepSeek-R1.json
  register: manifest
"""

RETURN = r"""
files:
  description: Every file of the commit, with C(path), C(size), C(sha256) and C(mtime_ns); empty in check mode when files are missing.
  returned: always
  type: list
  elements: dict
digest:
  description: sha256 of the canonical manifest (empty when incomplete).
  returned: always
  type: str
total_bytes:
  description: Sum of the file sizes of the commit.
  returned: always
  type: int
hashed_bytes:
  description: Bytes of present files read to check them (0 when the cache covered every file).
  returned: always
  type: int
downloaded_bytes:
  description: Bytes received from the Hub in this run (in check mode, the bytes that would be).
  returned: always
  type: int
published:
  description: Files downloaded and put in place in this run.
  returned: always
  type: list
  elements: str
commit:
  description: The commit the files come from.
  returned: always
  type: str
ignored:
  description: Files under O(path) that are not part of the commit; they are not broadcast.
  returned: always
  type: list
  elements: str
"""

import concurrent.futures
import json
import os
import threading
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._hub import (
    HubDroppedError,
    HubError,
    HubFile,
    Progress,
    download,
    fetch_listing,
    hash_local,
    manifest_problems,
)
from ansible_collections.wideep.gb200.plugins.module_utils._weights import (
    STATE_DIR,
    check_index,
    manifest_digest,
    parse_manifest,
    write_json_atomic,
)


def hub_id(expected: HubFile) -> str:
    """What the Hub checks a file by: its LFS sha256, else its git blob id."""
    return f"sha256:{expected.sha256}" if expected.sha256 else f"git:{expected.git_sha1}"


def load_cache(cache: str | None) -> dict[str, dict[str, Any]]:
    if not cache or not os.path.exists(cache):
        return {}
    try:
        with open(cache, encoding="utf-8") as handle:
            data = json.load(handle)
        return {str(f["path"]): f for f in data.get("files", []) if isinstance(f, dict)}
    except (OSError, ValueError, KeyError, AttributeError):
        return {}


def local_files(root: str) -> set[str]:
    found = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(STATE_DIR)]
        found.update(os.path.relpath(os.path.join(folder, n), root) for n in names if not n.startswith(STATE_DIR))
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "endpoint": {"type": "str", "default": "https://huggingface.co"},
            "repo": {"type": "str", "required": True},
            "revision": {"type": "str", "required": True},
            "token": {"type": "str", "no_log": True},
            "path": {"type": "path", "required": True},
            "include": {"type": "list", "elements": "str", "default": []},
            "workers": {"type": "int", "default": 8},
            "retries": {"type": "int", "default": 3},
            "cache": {"type": "path"},
            "progress_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    root: str = p["path"]
    progress = Progress(None if module.check_mode else p["progress_path"], 0, write_json_atomic)
    progress.note(f"listing {p['repo']}@{p['revision'][:12]}")
    try:
        listing = fetch_listing(p["endpoint"], p["repo"], p["revision"], p["token"] or None, p["include"] or None)
    except HubError as exc:
        module.fail_json(msg=str(exc))
    cached = load_cache(p["cache"])
    sha256: dict[str, str] = {}
    hashed = 0
    wanted: list[HubFile] = []
    progress.note("checking the files already here", total=listing.total_bytes)
    for expected in listing.files:
        progress.add(expected.size)
        final = os.path.join(root, expected.path)
        if not os.path.isfile(final) or os.path.getsize(final) != expected.size:
            wanted.append(expected)
            continue
        old = cached.get(expected.path)
        # Trusted without hashing: unchanged since a run that checked it against this same Hub id.
        if old and old.get("size") == expected.size and old.get("mtime_ns") == os.stat(final).st_mtime_ns and old.get("hub_id") == hub_id(expected):
            sha256[expected.path] = str(old["sha256"])
            continue
        problem, digest = hash_local(final, expected)
        hashed += expected.size
        if problem:
            module.warn(f"{root}/{problem}: fetching it again")
            wanted.append(expected)
        else:
            sha256[expected.path] = digest
    missing_bytes = sum(f.size for f in wanted)
    ignored = sorted(local_files(root) - {f.path for f in listing.files}) if os.path.isdir(root) else []
    base: dict[str, Any] = {"commit": listing.commit, "total_bytes": listing.total_bytes, "hashed_bytes": hashed, "ignored": ignored}
    if module.check_mode and wanted:
        module.exit_json(changed=True, files=[], digest="", downloaded_bytes=missing_bytes, published=[f.path for f in wanted], **base)

    progress.note("downloading from the Hub", total=missing_bytes)
    lock = threading.Lock()

    def count(n: int) -> None:
        with lock:
            progress.add(n)

    def fetch(expected: HubFile) -> tuple[str, str]:
        final = os.path.join(root, expected.path)
        part = os.path.join(root, STATE_DIR, "hf-partial", expected.path)
        attempt = 1
        while True:
            try:
                return expected.path, download(p["endpoint"], listing, expected, final, part, p["token"] or None, count)[1]
            except HubDroppedError as exc:
                if attempt > p["retries"]:
                    raise HubError(f"{exc}; gave up after {attempt} attempts (the partial file stays: run again to resume)") from None
                attempt += 1
                module.warn(f"{exc}; resuming (attempt {attempt})")

    errors = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, p["workers"])) as pool:
        for future in concurrent.futures.as_completed([pool.submit(fetch, f) for f in wanted]):
            try:
                path, digest = future.result()
            except (HubError, OSError) as exc:
                errors.append(str(exc))
                continue
            sha256[path] = digest
    progress.add(0, force=True)
    if errors:
        module.fail_json(msg="; ".join(sorted(errors)), downloaded_bytes=progress.position, **base)

    files = []
    for expected in listing.files:
        info = os.stat(os.path.join(root, expected.path))
        files.append({"path": expected.path, "size": info.st_size, "sha256": sha256[expected.path], "mtime_ns": info.st_mtime_ns})
    problems = manifest_problems(files, listing)
    entries = parse_manifest({"files": files})
    problems += check_index(root, entries)
    if problems:
        module.fail_json(msg=f"{p['repo']}@{listing.commit}: " + "; ".join(problems), **base)
    cache_files = [{**f, "hub_id": hub_id(expected)} for f, expected in zip(files, listing.files, strict=True)]
    if p["cache"] and not module.check_mode and cache_files != [cached.get(f["path"]) for f in files]:
        write_json_atomic(p["cache"], {"files": cache_files})
    module.exit_json(
        changed=bool(wanted),
        files=files,
        digest=manifest_digest(entries),
        downloaded_bytes=progress.position,
        published=sorted(f.path for f in wanted),
        **base,
    )


if __name__ == "__main__":
    main()
