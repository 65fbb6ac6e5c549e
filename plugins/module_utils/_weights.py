# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Model weights on a tray: manifest, verified stamps, partial files, and the stream layout.

Layout of a destination directory DEST (what workers mount read-only):
  DEST/<path>                   published files: only ever complete and verified
  DEST/.wideep/partial/<path>   files being received (never visible under the final path)
  DEST/.wideep/stamps.json      {path: {size, mtime_ns, ino, sha256}} of verified files, so a
                                re-run trusts an untouched file without hashing it again
  DEST/.wideep/COMPLETE         the manifest digest, written once every file verified
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

CHUNK = 1 << 20
STATE_DIR = ".wideep"
# wideep.gb200.model_weights_manifest's options (its module and its action plugin share them).
MANIFEST_ARGUMENT_SPEC: dict[str, Any] = {"path": {"type": "path", "required": True}, "cache": {"type": "path"}}


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


def parse_manifest(data: Any) -> list[FileEntry]:
    """{"files": [{"path", "size", "sha256"}, ...]} -> entries; raises ValueError with the reason."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), list) or not data["files"]:
        raise ValueError("a manifest is a mapping with a non-empty 'files' list")
    entries = []
    seen = set()
    for item in data["files"]:
        try:
            entry = FileEntry(str(item["path"]), int(item["size"]), str(item["sha256"]).lower())
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"manifest entry {item!r} lacks path/size/sha256") from exc
        if entry.path.startswith("/") or ".." in entry.path.split("/") or entry.path.startswith(STATE_DIR):
            raise ValueError(f"manifest path {entry.path!r} must be relative, inside the model directory")
        if len(entry.sha256) != 64 or entry.size < 0 or entry.path in seen:
            raise ValueError(f"manifest entry {entry.path!r}: bad sha256/size, or listed twice")
        seen.add(entry.path)
        entries.append(entry)
    return entries


def manifest_digest(entries: list[FileEntry]) -> str:
    canonical = json.dumps([[e.path, e.size, e.sha256] for e in entries], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def sha256_file(path: str, limit: int | None = None) -> tuple[str, Any]:
    """sha256 of a file (or of its first `limit` bytes); also returns the live hash object."""
    digest = hashlib.sha256()
    remaining = limit
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            block = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest(), digest


def state_path(dest: str, *parts: str) -> str:
    return os.path.join(dest, STATE_DIR, *parts)


def partial_path(dest: str, rel: str) -> str:
    return state_path(dest, "partial", rel)


def read_stamps(dest: str) -> dict[str, dict[str, Any]]:
    try:
        with open(state_path(dest, "stamps.json"), encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json_atomic(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def stamp_of(path: str, sha256: str) -> dict[str, Any]:
    info = os.stat(path)
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ino": info.st_ino, "sha256": sha256}


def stamp_matches(path: str, stamp: dict[str, Any] | None, entry: FileEntry) -> bool:
    if not stamp or stamp.get("sha256") != entry.sha256:
        return False
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_size, info.st_mtime_ns, info.st_ino) == (entry.size, stamp.get("mtime_ns"), stamp.get("ino"))


def free_bytes(path: str) -> int:
    """Free space on the filesystem that holds path (or its nearest existing parent)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    return shutil.disk_usage(probe).free


def inspect(dest: str, entries: list[FileEntry], full_verify: bool = False) -> dict[str, Any]:
    """What a tray holds: per file complete / partial (with its usable prefix) / missing / corrupt.

    A published file whose stamp (size, mtime, inode, sha256) still matches is trusted without
    hashing; anything else published is hashed again. A corrupt published file is reported
    (model_weights_mark removes it), never served. Reads only: the fresh stamps of files hashed
    now are returned under "stamps", for model_weights_mark to record.
    """
    stamps = read_stamps(dest)
    files: dict[str, dict[str, Any]] = {}
    hashed = 0
    for entry in entries:
        final = os.path.join(dest, entry.path)
        state, have = "missing", 0
        if os.path.isfile(final):
            if not full_verify and stamp_matches(final, stamps.get(entry.path), entry):
                state, have = "complete", entry.size
            elif os.path.getsize(final) == entry.size and sha256_file(final)[0] == entry.sha256:
                hashed += entry.size
                state, have = "complete", entry.size
                stamps[entry.path] = stamp_of(final, entry.sha256)
            else:
                hashed += os.path.getsize(final)
                state = "corrupt"
        if state != "complete":
            part = partial_path(dest, entry.path)
            if os.path.isfile(part):
                size = os.path.getsize(part)
                have = min(size, entry.size) // CHUNK * CHUNK
                state = "partial" if have else state
        files[entry.path] = {"state": state, "have": have, "size": entry.size}
    return {
        "files": files,
        "complete": all(f["state"] == "complete" for f in files.values()),
        "missing_bytes": sum(f["size"] - f["have"] for f in files.values()),
        "hashed_bytes": hashed,
        "free_bytes": free_bytes(dest),
        "stamps": stamps,
    }


def read_marker(dest: str) -> str | None:
    """The manifest digest DEST/.wideep/COMPLETE holds; None without one ("" when it cannot be read)."""
    path = state_path(dest, "COMPLETE")
    if not os.path.lexists(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return str(json.load(handle))
    except (OSError, ValueError):
        return ""


def plan_marks(dest: str, entries: list[FileEntry], report: dict[str, Any], *, repair: bool, mark_complete: bool) -> dict[str, Any]:
    """What model_weights_mark changes, given what `inspect` found; decided before anything changes.

    - removed: corrupt published files (only with repair), so they are fetched again;
    - stamped: files whose stamp is new (hashed now, or their old stamp no longer matches), so the
      next run trusts them without hashing;
    - marked / unmarked: COMPLETE written (every file verified and the safetensors index agrees)
      or removed (a file is no longer complete).
    Check mode reports exactly this plan; a real run applies it (apply_marks).
    """
    removed = sorted(path for path, info in report["files"].items() if info["state"] == "corrupt") if repair else []
    on_disk = read_stamps(dest)
    stamps = {path: stamp for path, stamp in report["stamps"].items() if path not in removed}
    stamped = sorted(path for path, stamp in stamps.items() if on_disk.get(path) != stamp)
    forgotten = sorted(path for path in on_disk if path in removed)
    index_problems = check_index(dest, entries) if report["complete"] else []
    digest = manifest_digest(entries)
    marker = read_marker(dest)
    marked = bool(mark_complete and report["complete"] and not index_problems and marker != digest)
    unmarked = marker is not None and not report["complete"]
    return {
        "removed": removed,
        "stamped": stamped,
        "stamps": stamps if (stamped or forgotten) and os.path.isdir(dest) else None,
        "marked": marked,
        "unmarked": unmarked,
        "index_problems": index_problems,
        "digest": digest,
        "changed": bool(removed or stamped or forgotten or marked or unmarked),
    }


def apply_marks(dest: str, plan: dict[str, Any]) -> None:
    """Carry out plan_marks' plan: remove, record stamps, then write or remove COMPLETE."""
    for path in plan["removed"]:
        os.unlink(os.path.join(dest, path))
    if plan["stamps"] is not None:
        write_json_atomic(state_path(dest, "stamps.json"), plan["stamps"])
    marker = state_path(dest, "COMPLETE")
    if plan["marked"]:
        write_json_atomic(marker, plan["digest"])
    elif plan["unmarked"]:
        os.unlink(marker)


def mark_received(dest: str, entries: list[FileEntry], result: dict[str, Any]) -> tuple[bool, bool]:
    """After a receiver's stream: (holds_all, marked). Only when the stream passed through whole
    and no file failed, the copy is checked as model_weights_mark checks it (published files are
    trusted by their stamps, so nothing is read again) and COMPLETE written when every file is
    there and the index agrees. Nothing is ever removed here: a copy that is not whole is left to
    the next pass's check."""
    if result.get("state") != "complete" or result.get("failed"):
        return False, False
    report = inspect(dest, entries)
    if not report["complete"]:
        return False, False
    plan = plan_marks(dest, entries, report, repair=False, mark_complete=True)
    if plan["index_problems"]:
        return False, False
    if plan["changed"]:
        apply_marks(dest, plan)
    return True, bool(plan["marked"])


def index_names(entries: list[FileEntry]) -> list[str]:
    """The manifest's safetensors indexes (what check_index reads)."""
    return sorted(e.path for e in entries if e.path.endswith("model.safetensors.index.json"))


def check_index(dest_or_source: str, entries: list[FileEntry]) -> list[str]:
    """The safetensors index must agree with the manifest: every shard it names is listed."""
    indexes: dict[str, Any] = {}
    problems = []
    for name in index_names(entries):
        try:
            with open(os.path.join(dest_or_source, name), encoding="utf-8") as handle:
                indexes[name] = json.load(handle)
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: cannot be read as JSON ({exc})")
    return problems + index_problems(entries, indexes)


def index_problems(entries: list[FileEntry], indexes: dict[str, Any]) -> list[str]:
    """check_index's judgement of the indexes already read (name -> parsed JSON)."""
    names = {e.path for e in entries}
    problems = []
    for name in sorted(indexes):
        index = indexes[name]
        folder = os.path.dirname(name)
        shards = {os.path.join(folder, s) if folder else s for s in (index.get("weight_map") or {}).values()}
        missing = sorted(shards - names)
        if missing:
            problems.append(f"{name} names shards the manifest lacks: {', '.join(missing[:5])}")
        total = (index.get("metadata") or {}).get("total_size")
        listed = sum(e.size for e in entries if e.path in shards)
        if isinstance(total, int) and total > listed:
            problems.append(f"{name}: metadata.total_size {total} exceeds the {listed} bytes of its shards")
    return problems


@dataclass(frozen=True)
class Segment:
    """The bytes [start, size) of one file, at [offset, offset + size - start) of the stream."""

    entry: FileEntry
    start: int
    offset: int

    @property
    def length(self) -> int:
        return self.entry.size - self.start

    @property
    def end(self) -> int:
        return self.offset + self.length


def layout(entries: list[FileEntry], starts: dict[str, int]) -> list[Segment]:
    """The stream: every file with a start (chunk-aligned, from the plan), in manifest order."""
    segments: list[Segment] = []
    offset = 0
    for entry in entries:
        if entry.path not in starts:
            continue
        segment = Segment(entry, starts[entry.path], offset)
        segments.append(segment)
        offset = segment.end
    return segments


def make_manifest(source: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hash every file under source (skipping .wideep); reuse hashes of unchanged files.

    Returns {"files": [...], "hashed_bytes": bytes read to hash}."""
    cached = {f["path"]: f for f in (previous or {}).get("files", []) if isinstance(f, dict)}
    files = []
    hashed = 0
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d != STATE_DIR and not d.startswith(".wideep"))
        for name in sorted(names):
            if name.startswith(".wideep"):
                continue
            full = os.path.join(root, name)
            rel = os.path.relpath(full, source)
            info = os.stat(full)
            old = cached.get(rel)
            if old and old.get("size") == info.st_size and old.get("mtime_ns") == info.st_mtime_ns:
                digest = old["sha256"]
            else:
                digest = sha256_file(full)[0]
                hashed += info.st_size
            files.append({"path": rel, "size": info.st_size, "sha256": digest, "mtime_ns": info.st_mtime_ns})
    return {"files": files, "hashed_bytes": hashed}
