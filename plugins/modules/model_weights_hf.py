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
extends_documentation_fragment:
  - wideep.gb200._attributes
  - wideep.gb200._attributes.posix
attributes:
  check_mode:
    support: full
    details:
      - Lists the commit and hashes what is present; downloads and writes nothing, and reports the files it would download.
  diff_mode:
    support: none
  idempotent:
    support: full
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
    description:
      - JSON file keeping the hashes between runs, so present files are not hashed again.
      - Writing it (when files were hashed or downloaded) counts as a change; a re-run that finds every file as the
        cache says changes nothing.
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
import fcntl
import json
import os
import threading
import urllib.parse
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wideep.gb200.plugins.module_utils._hub import (
    HubError,
    HubFile,
    Progress,
    download,
    fetch_listing,
    hash_local,
    manifest_problems,
    partial_name,
    retrying,
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
    found: set[str] = set()
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
    if urllib.parse.urlsplit(p["endpoint"]).scheme not in ("http", "https"):
        module.fail_json(msg=f"endpoint {p['endpoint']!r} must be an http(s) URL")
    progress = Progress(None if module.check_mode else p["progress_path"], 0, write_json_atomic)
    lock = threading.Lock()

    def count(n: int) -> None:
        with lock:
            progress.add(n)

    def warn_retry(message: str, attempt: int) -> None:
        module.warn(f"{message}; trying again (attempt {attempt})")

    try:
        listing = retrying(lambda: fetch_listing(p["endpoint"], p["repo"], p["revision"], p["token"] or None, p["include"] or None), p["retries"], warn_retry)
    except HubError as exc:
        module.fail_json(msg=str(exc))
    if not module.check_mode:
        # One download per directory: a second run while an earlier one still writes (its wait
        # gave up, the job did not) would append to the same partial files. Taken once the
        # listing succeeded, so a refused source writes nothing.
        os.makedirs(os.path.join(root, STATE_DIR), exist_ok=True)
        lock_file = open(os.path.join(root, STATE_DIR, "hf.lock"), "a", encoding="utf-8")  # noqa: SIM115  # held until exit
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            module.fail_json(msg=f"another download into {root} is still running (an earlier run's job); wait for it to end, or stop it, then run again")
    cached = load_cache(p["cache"])
    sha256: dict[str, str] = {}
    hashed = 0
    wanted: list[HubFile] = []
    progress.note("checking the files already here", total=listing.total_bytes)
    for expected in listing.files:
        final = os.path.join(root, expected.path)
        if not os.path.isfile(final) or os.path.getsize(final) != expected.size:
            progress.add(expected.size)
            wanted.append(expected)
            continue
        old, info = cached.get(expected.path), os.stat(final)
        # Trusted without hashing: the same file (inode, size, mtime) a run checked against this Hub id.
        now = (expected.size, info.st_mtime_ns, info.st_ino, hub_id(expected))
        if old and (old.get("size"), old.get("mtime_ns"), old.get("ino"), old.get("hub_id")) == now:
            progress.add(expected.size)
            sha256[expected.path] = str(old["sha256"])
            continue
        problem, digest = hash_local(final, expected, count)
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
        module.exit_json(changed=True, files=[], digest="", downloaded_bytes=missing_bytes, published=sorted(f.path for f in wanted), **base)

    progress.note("downloading from the Hub", total=missing_bytes)

    def fetch(expected: HubFile) -> tuple[str, str]:
        final = os.path.join(root, expected.path)
        part = os.path.join(root, STATE_DIR, "hf-partial", partial_name(expected))
        digest = retrying(lambda: download(p["endpoint"], listing, expected, final, part, p["token"] or None, count)[1], p["retries"], warn_retry)
        return expected.path, str(digest)

    errors = []
    published = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, p["workers"])) as pool:
        futures = {pool.submit(fetch, f): f for f in wanted}
        for future in concurrent.futures.as_completed(futures):
            try:
                path, digest = future.result()
            except HubError as exc:
                errors.append(str(exc))
                continue
            except Exception as exc:  # a disk or protocol error: reported with the file, the others go on
                errors.append(f"{futures[future].path}: {type(exc).__name__}: {exc}")
                continue
            sha256[path] = digest
            published.append(path)
    progress.add(0, force=True)
    if errors:
        module.fail_json(msg="; ".join(sorted(errors)), changed=bool(published), published=sorted(published), downloaded_bytes=progress.position, **base)

    files, inodes = [], []
    for expected in listing.files:
        info = os.stat(os.path.join(root, expected.path))
        files.append({"path": expected.path, "size": info.st_size, "sha256": sha256[expected.path], "mtime_ns": info.st_mtime_ns})
        inodes.append(info.st_ino)
    problems = manifest_problems(files, listing)
    entries = parse_manifest({"files": files})
    problems += check_index(root, entries)
    if problems:
        module.fail_json(msg=f"{p['repo']}@{listing.commit}: " + "; ".join(problems), **base)
    cache_files = [{**f, "ino": ino, "hub_id": hub_id(expected)} for f, ino, expected in zip(files, inodes, listing.files, strict=True)]
    cache_changed = bool(p["cache"]) and cache_files != [cached.get(f["path"]) for f in files]
    if cache_changed and not module.check_mode:
        write_json_atomic(p["cache"], {"files": cache_files})
    module.exit_json(
        changed=bool(wanted) or cache_changed,
        files=files,
        digest=manifest_digest(entries),
        downloaded_bytes=progress.position,
        published=sorted(published),
        **base,
    )


if __name__ == "__main__":
    main()
