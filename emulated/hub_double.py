"""TEST DOUBLE of the Hugging Face Hub (the Hub cannot be reached from here).

Serves one directory as one model repository at one commit, over the Hub's HTTP interface as
huggingface_hub uses it (tests/unit/test_weights_hub.py checks that the official client reads it):

  GET       /api/models/<repo>/revision/<rev>[?blobs=true]   file list, LFS sha256, git blob ids
  GET|HEAD  /<repo>/resolve/<rev>/<path>                     small files: 200 with Range support;
                                                              LFS files: 302 to the "CDN" below
  GET|HEAD  /cdn/<sha256>            (on a second port: another host, as the Hub's CDN is)

Like the real services: a configured token is required at the Hub port (401 otherwise), and the
CDN refuses any request that carries an Authorization header (a presigned URL must not get the
token). `main` resolves to the commit; any other revision is 404 RevisionNotFound.

Faults for tests: --corrupt PATH serves PATH with one byte flipped; --cut-after N closes the
first LFS body after N bytes (a dropped connection, to exercise resume); in-process only
(serve()), ignore_range answers every Range with the whole file and fail_first=N answers the
first N CDN requests 503. --log FILE appends one
JSON line per request: port, method, path, range, and whether an Authorization header came.

Standard library only, so it also runs on an emulated tray (`python3 - ... < hub_double.py`).
  python3 emulated/hub_double.py DIR --repo deepseek-ai/DeepSeek-R1 --commit <40 hex> --port 8700
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import urllib.parse
from typing import Any

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
LFS_MIN_BYTES = 10 * 1024 * 1024  # the Hub stores larger files in LFS whatever their name


class Repo:
    def __init__(self, root: str, repo: str, commit: str, corrupt: set[str]) -> None:
        self.root, self.repo, self.commit, self.corrupt = root, repo, commit, corrupt
        self.files: dict[str, dict[str, Any]] = {}
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, root)
                size = os.path.getsize(full)
                sha256, blob = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)  # git's object id
                with open(full, "rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 20), b""):
                        sha256.update(block)
                        blob.update(block)
                lfs = rel.endswith(LFS_SUFFIXES) or size >= LFS_MIN_BYTES
                if lfs:  # git stores an LFS file as its pointer: the Hub's blobId is the pointer's
                    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256.hexdigest()}\nsize {size}\n".encode()
                    blob = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer)
                self.files[rel] = {"path": full, "size": size, "sha256": sha256.hexdigest(), "blob": blob.hexdigest(), "lfs": lfs}
        self.by_sha = {f["sha256"]: rel for rel, f in self.files.items() if f["lfs"]}

    def body(self, rel: str, start: int, end: int) -> bytes:
        with open(self.files[rel]["path"], "rb") as handle:
            handle.seek(start)
            data = bytearray(handle.read(end - start))
        if rel in self.corrupt and data:
            data[len(data) // 2] ^= 0xFF
        return bytes(data)


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        pass

    def do_HEAD(self) -> None:  # http.server's naming
        self.handle_request(head=True)

    def do_GET(self) -> None:
        self.handle_request(head=False)

    # ----------------------------------------------------------------------------------------
    def record(self) -> None:
        if self.server.config.log:
            line = {
                "port": self.server.server_address[1],
                "method": self.command,
                "path": self.path,
                "range": self.headers.get("Range"),
                "authorization": "Authorization" in self.headers,
            }
            with self.server.config.lock, open(self.server.config.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")

    def error(self, code: int, error_code: str, message: str) -> None:
        data = json.dumps({"error": message}).encode()
        self.send_response(code)
        self.send_header("X-Error-Code", error_code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_request(self, head: bool) -> None:
        self.record()
        config = self.server.config
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if self.server.is_cdn:
            with config.lock:
                failing = config.fail_first > 0
                config.fail_first -= 1 if failing else 0
            if failing:
                self.error(503, "SlowDown", "the CDN is busy; retry")
                return
            if "Authorization" in self.headers:
                self.error(400, "AuthorizationNotAllowed", "a presigned CDN URL must not be sent an Authorization header")
                return
            match = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
            if not match or match.group(1) not in config.repo.by_sha:
                self.error(404, "NoSuchKey", "no such object")
                return
            self.send_file(config.repo.by_sha[match.group(1)], head, headers={"ETag": f'"{match.group(1)}"'})
            return
        if config.token and self.headers.get("Authorization") != f"Bearer {config.token}":
            self.error(401, "GatedRepo", "Access to this model is restricted: a valid token is required")
            return
        repo = config.repo
        api = re.fullmatch(r"/api/models/(.+)/revision/([^/]+)", path)
        resolve = re.fullmatch(r"/(.+?/.+?)/resolve/([^/]+)/(.+)", path)
        name, revision = (api or resolve).groups()[:2] if (api or resolve) else ("", "")
        if not (api or resolve):
            self.error(404, "NotFound", "not a route of this Hub double")
            return
        if name != repo.repo:
            self.error(404, "RepositoryNotFound", f"Repository {name} not found")
            return
        if revision not in (repo.commit, "main"):
            self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        if api:
            blobs = urllib.parse.parse_qs(url.query).get("blobs", ["false"])[0].lower() == "true"
            siblings = []
            for rel, info in sorted(repo.files.items()):
                entry: dict[str, Any] = {"rfilename": rel}
                if blobs:
                    entry["size"] = info["size"]
                    entry["blobId"] = info["blob"]
                    if info["lfs"]:
                        entry["lfs"] = {"sha256": info["sha256"], "size": info["size"], "pointerSize": 134}
                siblings.append(entry)
            data = json.dumps({"_id": "0" * 24, "id": repo.repo, "modelId": repo.repo, "sha": repo.commit, "private": False, "siblings": siblings}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
            return
        rel = resolve.groups()[2] if resolve else ""
        info = repo.files.get(rel)
        if info is None:
            self.error(404, "EntryNotFound", f"{rel} does not exist on {revision}")
            return
        common = {"X-Repo-Commit": repo.commit}
        if info["lfs"]:
            host = self.headers.get("Host", "127.0.0.1").rsplit(":", 1)[0]
            location = f"http://{host}:{config.cdn_port}/cdn/{info['sha256']}"
            self.send_response(302)
            linked = {"Location": location, "X-Linked-Etag": f'"{info["sha256"]}"', "X-Linked-Size": str(info["size"]), "ETag": f'"{info["blob"]}"'}
            for key, value in {**common, **linked}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_file(rel, head, headers={**common, "ETag": f'"{info["blob"]}"'})

    def send_file(self, rel: str, head: bool, headers: dict[str, str]) -> None:
        config = self.server.config
        size = config.repo.files[rel]["size"]
        start, end, status = 0, size, 200
        requested = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if requested and size and not config.ignore_range:
            start = int(requested.group(1))
            end = min(size, int(requested.group(2)) + 1) if requested.group(2) else size
            if start >= size:
                self.error(416, "RangeNotSatisfiable", "range not satisfiable")
                return
            status = 206
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if head:
            return
        data = config.repo.body(rel, start, end)
        cut = None
        with config.lock:
            if config.cut_after is not None and config.repo.files[rel]["lfs"] and not config.cut_done:
                config.cut_done, cut = True, config.cut_after
        if cut is not None:
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # socket.SHUT_RDWR: the client sees a short body
            return
        self.wfile.write(data)


class Config:
    def __init__(self, repo: Repo, token: str | None, cut_after: int | None, log: str | None, ignore_range: bool = False, fail_first: int = 0) -> None:
        self.repo, self.token, self.cut_after, self.log = repo, token, cut_after, log
        self.ignore_range, self.fail_first = ignore_range, fail_first
        self.cut_done = False
        self.cdn_port = 0
        self.lock = threading.Lock()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: Config, is_cdn: bool) -> None:
        super().__init__(address, Handler)
        self.config, self.is_cdn = config, is_cdn


def serve(root: str, repo: str, commit: str, host: str = "127.0.0.1", port: int = 0, cdn_port: int = 0, **faults: Any) -> tuple[Server, Server]:
    """Start the Hub and CDN listeners in threads; returns them (server_address has the ports)."""
    config = Config(
        Repo(root, repo, commit, set(faults.get("corrupt") or ())),
        faults.get("token"),
        faults.get("cut_after"),
        faults.get("log"),
        bool(faults.get("ignore_range")),
        int(faults.get("fail_first") or 0),
    )
    hub = Server((host, port), config, is_cdn=False)
    cdn = Server((host, cdn_port), config, is_cdn=True)
    config.cdn_port = cdn.server_address[1]
    for server in (hub, cdn):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return hub, cdn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("root")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--cdn-port", type=int, default=8701)
    parser.add_argument("--token-file", help="require this token (read from a file, so it is not on the command line)")
    parser.add_argument("--corrupt", action="append", default=[])
    parser.add_argument("--cut-after", type=int)
    parser.add_argument("--log")
    args = parser.parse_args()
    token = None
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
    faults = {"token": token, "corrupt": args.corrupt, "cut_after": args.cut_after, "log": args.log}
    hub, _cdn = serve(args.root, args.repo, args.commit, args.host, args.port, args.cdn_port, **faults)
    sys.stdout.write(f"hub double: http://{args.host}:{hub.server_address[1]} serving {args.repo}@{args.commit} from {args.root}\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
