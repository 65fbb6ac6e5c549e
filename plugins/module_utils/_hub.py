# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Hugging Face Hub model repository at a pinned commit: its file list, downloads, and checks.

The Hub's HTTP interface, as its own client (huggingface_hub) uses it:
  GET  {endpoint}/api/models/{repo}/revision/{revision}?blobs=true
       -> {"sha": <commit>, "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size"}}]}
  GET  {endpoint}/{repo}/resolve/{revision}/{path}   (Range for resume; LFS files redirect to a CDN)
LFS files (the safetensors shards) carry the sha256 of their content; small files carry their
git blob id, sha1("blob <size>\\0" + content). Every downloaded or already present file is
checked against one of them, so the manifest the trays verify against is the Hub's own.

The token is sent to the Hub's host only: a redirect to another host (the CDN) drops it.
Nothing here writes or logs it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHUNK = 1 << 20
COMMIT = re.compile(r"^[0-9a-f]{40}$")
REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
USER_AGENT = "wideep.gb200 (model_weights_hf)"
MAX_REDIRECTS = 10


class HubError(Exception):
    """A problem with the Hub or a file from it, worded for the operator."""


class HubDroppedError(HubError):
    """The connection ended early; what arrived is kept, and the next attempt resumes after it."""


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    git_sha1: str | None  # every file: the git blob id

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class Listing:
    repo: str
    commit: str
    files: tuple[HubFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def source_problems(source: dict[str, Any]) -> list[str]:
    """What is wrong with a model_weights_source of type hf, one line per problem, with the fix."""
    problems = []
    repo = str(source.get("repo") or "")
    if not REPO.match(repo):
        problems.append(f"model_weights_source.repo {repo!r} is not a Hub model id: write it as <owner>/<name>, e.g. deepseek-ai/DeepSeek-R1")
    revision = str(source.get("revision") or "")
    if not COMMIT.match(revision):
        problems.append(
            f"model_weights_source.revision {revision!r} is not a commit: pin the 40-hex commit id (the repository's "
            "'Files and versions' page, or `git ls-remote https://huggingface.co/<repo> main`), so every tray and every "
            "run gets the same bytes"
        )
    path = str(source.get("path") or "")
    if not path.startswith("/"):
        problems.append(f"model_weights_source.path {path!r} must be an absolute directory on the download tray (where the Hub copy is kept)")
    endpoint = str(source.get("endpoint") or "https://huggingface.co")
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https") or not urllib.parse.urlsplit(endpoint).netloc:
        problems.append(f"model_weights_source.endpoint {endpoint!r} must be an http(s) URL, e.g. https://huggingface.co or a mirror")
    return problems


def listing_url(endpoint: str, repo: str, revision: str) -> str:
    return f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{urllib.parse.quote(revision, safe='')}?blobs=true"


def resolve_url(endpoint: str, repo: str, revision: str, path: str) -> str:
    return f"{endpoint.rstrip('/')}/{repo}/resolve/{urllib.parse.quote(revision, safe='')}/{urllib.parse.quote(path)}"


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "" not in parts and not parts[0].startswith(".wideep")


def parse_listing(data: Any, repo: str, revision: str, include: list[str] | None = None) -> Listing:
    """The Hub's answer for repo@revision -> the files to fetch (those matching include, if given)."""
    if not isinstance(data, dict) or not isinstance(data.get("siblings"), list):
        raise HubError(f"the Hub's answer for {repo}@{revision} has no file list (siblings)")
    commit = str(data.get("sha") or "")
    if commit != revision:
        raise HubError(f"{repo}@{revision} resolved to commit {commit or '(none)'}: pin model_weights_source.revision to a commit id")
    files = []
    for item in data["siblings"]:
        if not isinstance(item, dict):
            raise HubError(f"{repo}@{revision}: malformed file entry {item!r}")
        path = str(item.get("rfilename") or "")
        if not _safe_path(path):
            raise HubError(f"{repo}@{revision}: refusing file path {path!r} (absolute, empty, '..' or .wideep)")
        if include and not any(fnmatch.fnmatchcase(path, pattern) for pattern in include):
            continue
        lfs = item.get("lfs") if isinstance(item.get("lfs"), dict) else None
        size = (lfs or {}).get("size", item.get("size"))
        if not isinstance(size, int) or size < 0:
            raise HubError(f"{repo}@{revision}: {path} has no size in the Hub's answer (is this the ?blobs=true listing?)")
        sha256 = str(lfs["sha256"]).lower() if lfs and lfs.get("sha256") else None
        if sha256 is not None and not re.match(r"^[0-9a-f]{64}$", sha256):
            raise HubError(f"{repo}@{revision}: {path} has a malformed LFS sha256 {sha256!r}")
        blob = str(item.get("blobId") or "").lower() or None
        if sha256 is None and (blob is None or not COMMIT.match(blob)):
            raise HubError(f"{repo}@{revision}: {path} has neither an LFS sha256 nor a git blob id to check it against")
        files.append(HubFile(path, size, sha256, blob))
    if not files:
        raise HubError(f"{repo}@{revision}: no file matches model_weights_source.include {include}")
    return Listing(repo, commit, tuple(sorted(files, key=lambda f: f.path)))


def git_blob_hasher(size: int) -> Any:
    """A sha1 object primed with git's blob header: feed it the content to get the blob id."""
    hasher = hashlib.sha1()  # git's object id: compared with the Hub's, not a secret
    hasher.update(b"blob %d\0" % size)
    return hasher


def check_file(expected: HubFile, size: int, sha256: str, git_sha1: str | None) -> str | None:
    """None when a local file (its size and hashes) is the Hub's, else what differs."""
    if size != expected.size:
        return f"{expected.path}: {size} bytes, the Hub has {expected.size}"
    if expected.sha256 is not None and sha256 != expected.sha256:
        return f"{expected.path}: sha256 {sha256[:16]}... differs from the Hub's LFS sha256 {expected.sha256[:16]}..."
    if expected.sha256 is None and git_sha1 != expected.git_sha1:
        return f"{expected.path}: git blob id {git_sha1} differs from the Hub's {expected.git_sha1}"
    return None


def manifest_problems(manifest_files: list[dict[str, Any]], listing: Listing) -> list[str]:
    """Cross-check a manifest (path, size, sha256) against the Hub: same files, sizes, LFS sha256."""
    have = {str(f["path"]): f for f in manifest_files}
    problems = []
    for expected in listing.files:
        entry = have.pop(expected.path, None)
        if entry is None:
            problems.append(f"{expected.path}: in {listing.repo}@{listing.commit[:12]} but not in the manifest")
            continue
        # Small files are checked by git blob id when fetched; here their sha256 is only ours.
        problem = check_file(expected, int(entry["size"]), str(entry["sha256"]), expected.git_sha1)
        if problem:
            problems.append(problem)
    problems += [f"{path}: in the manifest but not in {listing.repo}@{listing.commit[:12]}" for path in sorted(have)]
    return problems


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # followed by hand, so the token never leaves the Hub's host


# HTTP(S) only: no file:, ftp: or data: handlers, whatever a redirect says.
_OPENER = urllib.request.OpenerDirector()
for _handler in (
    urllib.request.HTTPHandler(),
    urllib.request.HTTPSHandler(),
    urllib.request.HTTPDefaultErrorHandler(),
    urllib.request.HTTPErrorProcessor(),
    _NoRedirect(),
):
    _OPENER.add_handler(_handler)
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


def _public(url: str) -> str:
    """URL without its query: a presigned CDN URL's signature is a credential too."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _error_message(url: str, code: int, headers: Any, what: str) -> str:
    reason = headers.get("X-Error-Code") or headers.get("X-Error-Message") or ""
    if code == 401:
        return f"the Hub answered 401 for {what}: set model_weights_hf_token to a token that may read it ({reason or 'unauthorized'})"
    if code == 403:
        return f"the Hub answered 403 for {what}: accept the model's terms with the token's account, or use another token ({reason or 'forbidden'})"
    if code == 404:
        return f"the Hub has no {what} ({reason or 'not found'}): check model_weights_source.repo and .revision"
    return f"the Hub answered {code} for {what} ({reason or _public(url)})"


def open_url(url: str, token: str | None, what: str, offset: int = 0, timeout: float = 60) -> Any:
    """GET url, following redirects by hand: the token goes only to the first URL's scheme and
    host, never over a downgrade to http; 408/429/5xx and network errors raise HubDroppedError
    (worth another try), everything else HubError."""
    origin = urllib.parse.urlsplit(url)
    for _hop in range(MAX_REDIRECTS):
        here = urllib.parse.urlsplit(url)
        if here.scheme not in ("http", "https") or (origin.scheme == "https" and here.scheme != "https"):
            raise HubError(f"refusing a redirect to {_public(url)} for {what} (only http(s), never from https down to http)")
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if token and (here.scheme, here.netloc) == (origin.scheme, origin.netloc):
            headers["Authorization"] = f"Bearer {token}"
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            return _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                url = urllib.parse.urljoin(url, exc.headers["Location"])
                exc.close()
                continue
            message = _error_message(url, exc.code, exc.headers, what)
            exc.close()
            raise (HubDroppedError if exc.code in RETRYABLE else HubError)(message) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise HubDroppedError(f"cannot reach the Hub for {what}: {getattr(exc, 'reason', exc)}") from None
    raise HubError(f"more than {MAX_REDIRECTS} redirects for {what}")


def retrying(action: Callable[[], Any], retries: int, on_retry: Callable[[str, int], None], backoff: float = 2.0) -> Any:
    """action(), again after a HubDroppedError up to RETRIES times, waiting backoff * 2**n seconds (at most 60)."""
    attempt = 1
    while True:
        try:
            return action()
        except HubDroppedError as exc:
            if attempt > retries:
                raise HubError(f"{exc}; gave up after {attempt} attempts (a partial file stays: run again to resume)") from None
            on_retry(str(exc), attempt + 1)
            time.sleep(min(backoff * 2 ** (attempt - 1), 60))
            attempt += 1


def fetch_listing(endpoint: str, repo: str, revision: str, token: str | None, include: list[str] | None = None) -> Listing:
    with open_url(listing_url(endpoint, repo, revision), token, f"model {repo} at revision {revision}") as response:
        try:
            data = json.load(response)
        except ValueError as exc:
            raise HubError(f"the Hub's answer for {repo}@{revision} is not JSON ({exc})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise HubDroppedError(f"the Hub's answer for {repo}@{revision} broke off ({exc})") from None
    return parse_listing(data, repo, revision, include)


def _hash_prefix(path: str, size: int, expected: HubFile, on_block: Callable[[int], None] | None = None) -> tuple[Any, Any]:
    sha256 = hashlib.sha256()
    blob = git_blob_hasher(expected.size)
    with open(path, "rb") as handle:
        remaining = size
        while remaining > 0:
            block = handle.read(min(CHUNK, remaining))
            if not block:
                break
            sha256.update(block)
            blob.update(block)
            remaining -= len(block)
            if on_block:
                on_block(len(block))
    return sha256, blob


def partial_name(expected: HubFile) -> str:
    """The partial file of EXPECTED, named by its content id: a partial of another revision's
    file of the same path is never resumed into this one."""
    return str(expected.sha256 or expected.git_sha1)


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def download(
    endpoint: str,
    listing: Listing,
    expected: HubFile,
    dest: str,
    part: str,
    token: str | None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Fetch one file to PART (resuming what is there), verify it, fsync, rename it to DEST.

    Returns the bytes received and the file's sha256. HubDroppedError (retry) when the transfer
    broke off, keeping what arrived, or when a resumed file did not verify (its partial removed,
    so the retry starts from byte 0); HubError when a whole download does not verify (removed)."""
    os.makedirs(os.path.dirname(part), exist_ok=True)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if have > expected.size:
        os.unlink(part)
        have = 0
    resumed = have

    def touch(_count: int) -> None:  # keeps the progress file fresh while the prefix is hashed
        if on_bytes:
            on_bytes(0)

    sha256, blob = _hash_prefix(part, have, expected, touch) if have else (hashlib.sha256(), git_blob_hasher(expected.size))
    received = 0
    url = resolve_url(endpoint, listing.repo, listing.commit, expected.path)
    what = f"{listing.repo}@{listing.commit[:12]}/{expected.path}"
    if have < expected.size or expected.size == 0:
        with open_url(url, token, what, offset=have) as response:
            if have and response.status == 206:
                answered = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if not answered or int(answered.group(1)) != have or int(answered.group(3)) != expected.size:
                    os.unlink(part)
                    raise HubDroppedError(f"{what}: the server answered range {response.headers.get('Content-Range')!r} for bytes={have}-; starting over")
            elif have:  # the server ignored Range and sends the whole file: start over
                sha256, blob, have, resumed = hashlib.sha256(), git_blob_hasher(expected.size), 0, 0
            with open(part, "ab" if have else "wb") as handle:
                while have + received < expected.size:
                    try:
                        block = response.read(min(CHUNK, expected.size - have - received))
                    except (OSError, http.client.HTTPException) as exc:
                        raise HubDroppedError(f"{what}: the connection dropped after {have + received} of {expected.size} bytes ({exc})") from None
                    if not block:
                        break
                    handle.write(block)
                    sha256.update(block)
                    blob.update(block)
                    received += len(block)
                    if on_bytes:
                        on_bytes(len(block))
                handle.flush()
                os.fsync(handle.fileno())
    size = os.path.getsize(part)
    if size < expected.size:  # http.client ends a short body quietly
        raise HubDroppedError(f"{what}: the connection ended after {size} of {expected.size} bytes")
    problem = check_file(expected, size, sha256.hexdigest(), blob.hexdigest())
    if problem:
        os.unlink(part)
        if resumed:
            raise HubDroppedError(f"{what}: the resumed copy does not verify ({problem}); starting over from byte 0")
        raise HubError(f"download of {problem}; the partial file was removed, run again to fetch it anew")
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    os.replace(part, dest)
    directory = os.open(os.path.dirname(dest) or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return received, sha256.hexdigest()


def hash_local(path: str, expected: HubFile, on_block: Callable[[int], None] | None = None) -> tuple[str | None, str]:
    """(None, sha256) when the file at PATH is the Hub's expected file, else (what differs, sha256)."""
    size = os.path.getsize(path)
    if size != expected.size:
        return check_file(expected, size, "", None), ""
    sha256, blob = _hash_prefix(path, size, expected, on_block)
    return check_file(expected, size, sha256.hexdigest(), blob.hexdigest()), sha256.hexdigest()


class Progress:
    """Bytes, rate and ETA of a download, written as the relays' progress.json (relay_wait reads it)."""

    def __init__(self, path: str | None, total: int, write: Callable[[str, Any], None], state: str = "downloading from the Hub") -> None:
        self.path, self.total, self._write, self.state = path, total, write, state
        self.position = 0
        self.started = time.monotonic()
        self._last = 0.0

    def note(self, state: str, total: int | None = None) -> None:
        """A new phase (listing, checking present files, downloading): written at once."""
        self.state = state
        if total is not None:
            self.total, self.position, self.started = total, 0, time.monotonic()
        self.add(0, force=True)

    def add(self, count: int, force: bool = False) -> None:
        self.position += count
        now = time.monotonic()
        if not self.path or (not force and now - self._last < 1):
            return
        self._last = now
        rate = self.position / max(now - self.started, 1e-6)
        eta = int((self.total - self.position) / rate) if rate > 0 else 0
        self._write(
            self.path,
            {"total": self.total, "position": self.position, "rate_bytes_per_s": int(rate), "eta_s": eta, "state": self.state, "updated": time.time()},
        )
