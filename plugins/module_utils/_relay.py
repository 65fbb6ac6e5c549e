# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A pipelined chain broadcast of files: source -> tray 1 -> tray 2 -> ... over TCP.

Every relay forwards each chunk downstream as soon as it arrives, writes the files it needs to
DEST/.wideep/partial, hashes while streaming, and publishes a file (fsync + rename) only when
its sha256 matches the manifest. Time ~ W/B plus a per-hop fill of one chunk, whatever N.

Faults: when a downstream tray dies or stalls (a send blocks longer than stall_timeout), its
upstream connects to the next tray of the chain, asks for its stream position and replays
from a ring buffer (the source re-reads its files), so the rest of the chain goes on. The
bypassed tray keeps what it verified and is caught up by the next pass. A relay whose own
upstream hung up was bypassed itself and stops forwarding rather than cut in further down.

The protocol: the upstream sends one line `WIDEEP1 {"run": id, "from": index}`; the receiver
answers `{"ok": true, "pos": p}` (its position in the stream) or `{"ok": false, "why": ...}`,
once its own downstream is attached; then the raw bytes of the stream from p follow, and the
receiver answers one byte `K` when all of it arrived (an upstream ends only after that, so a
tray that froze with the tail in its socket buffers is bypassed too). The stream layout (which files, from which
offset) is the same on every relay, given by the plan.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import select
import socket
import threading
import time
from typing import Any

from ._weights import CHUNK, Segment, partial_path, read_stamps, sha256_file, stamp_of, state_path, write_json_atomic

MAGIC = b"WIDEEP1 "
ACK = b"K"  # downstream -> upstream, once the whole stream arrived


class RelayError(Exception):
    pass


def _send_line(sock: socket.socket, data: dict[str, Any]) -> None:
    sock.sendall(json.dumps(data).encode() + b"\n")


def _read_line(sock: socket.socket, limit: int = 4096) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            raise RelayError("connection closed during the handshake")
        line += byte
        if len(line) > limit:
            raise RelayError("handshake line too long")
    return line


class _Ring:
    """The last `capacity` bytes of the stream, to replay to a new downstream after a bypass."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.chunks: collections.deque[tuple[int, bytes]] = collections.deque()
        self.size = 0
        self.end = 0

    def add(self, pos: int, data: bytes) -> None:
        self.chunks.append((pos, data))
        self.size += len(data)
        self.end = pos + len(data)
        while self.size - len(self.chunks[0][1]) >= self.capacity:
            self.size -= len(self.chunks.popleft()[1])

    def since(self, pos: int, upto: int) -> bytes | None:
        if pos == upto:
            return b""
        if not self.chunks or self.chunks[0][0] > pos:
            return None
        out = []
        for start, data in self.chunks:
            end = start + len(data)
            if end <= pos or start >= upto:
                continue
            out.append(data[max(0, pos - start) : len(data) - max(0, end - upto)])
        return b"".join(out)


class Relay:
    """One member of the chain. index 0 is the source (it reads source_dir); others receive."""

    def __init__(
        self,
        *,
        run_id: str,
        index: int,
        chain: list[tuple[str, int]],
        segments: list[Segment],
        needs: set[str],
        dest: str | None,
        source_dir: str | None = None,
        fanout: bool = False,
        stall_timeout: float = 20.0,
        connect_timeout: float = 60.0,
        ring_bytes: int = 256 * CHUNK,
        progress_path: str | None = None,
        listen_host: str = "0.0.0.0",
        rate_limit: int = 0,
        idle_timeout: float = 300.0,
    ) -> None:
        self.run_id = run_id
        self.index = index
        self.chain = chain
        self.segments = segments
        self.total = segments[-1].end if segments else 0
        self.needs = needs
        self.dest = dest
        self.source_dir = source_dir
        self.fanout = fanout
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self.ring = _Ring(ring_bytes)
        self.progress_path = progress_path
        self.listen_host = listen_host
        # Bytes/s the source may send (0: line rate), to share a fabric that is serving.
        self.rate_limit = rate_limit
        # A receiver that gets no byte for this long gives up (its files stay partial).
        self.idle_timeout = idle_timeout
        self.last_data = time.monotonic()
        self.position = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.started = time.monotonic()
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.state = "starting"
        self.bypassed: list[int] = []
        self.published: list[str] = []
        self.failed: dict[str, str] = {}
        self.cond = threading.Condition()
        self.down_lock = threading.RLock()
        self.upstream: socket.socket | None = None
        self.upstream_index: int | None = None
        self.idle = True
        self.down: socket.socket | None = None
        self.down_index: int | None = None
        self.candidates = [] if fanout else list(range(index + 1, len(chain)))
        # Set once this relay has a downstream (or knows it has none). A receiver answers its
        # upstream's handshake only then, so the chain comes up from the tail before any byte
        # flows and nothing has to be replayed at the start.
        self.downstream_ready = threading.Event()
        if not self.candidates or index == 0:
            self.downstream_ready.set()
        self._writer: _FileWriter | None = None
        self._segment_at = 0
        self._stop = threading.Event()

    # ---- public -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        progress = threading.Thread(target=self._progress_loop, daemon=True)
        progress.start()
        try:
            if self.index == 0:
                self._run_source()
            else:
                self._run_receiver()
        finally:
            self.finished_at = time.time()
            self._stop.set()
            if self._writer:
                self._writer.abandon()
            self._close_down()
            self._write_progress()
        return self.result()

    def result(self) -> dict[str, Any]:
        seconds = max(time.monotonic() - self.started, 1e-9)
        return {
            "index": self.index,
            "state": self.state,
            "position": self.position,
            "total": self.total,
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "seconds": round(seconds, 3),
            # Wall clock, to time a whole pass across trays (source start -> last tray done).
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "published": self.published,
            "failed": self.failed,
            "bypassed": [f"{self.chain[i][0]}:{self.chain[i][1]}" for i in self.bypassed],
        }

    # ---- source -----------------------------------------------------------------------------
    def _source_read(self, pos: int, size: int) -> bytes:
        """Stream bytes [pos, pos + size) read from the source files (crossing file ends)."""
        out = []
        for segment in self.segments:
            if segment.end <= pos or size <= 0:
                continue
            within = pos - segment.offset
            take = min(size, segment.length - within)
            with open(os.path.join(str(self.source_dir), segment.entry.path), "rb") as handle:
                handle.seek(segment.start + within)
                data = handle.read(take)
            if len(data) != take:
                raise RelayError(f"source file {segment.entry.path} is shorter than the manifest says")
            out.append(data)
            pos += take
            size -= take
        return b"".join(out)

    def _run_source(self) -> None:
        self.state = "sending"
        if self.fanout:
            self._run_fanout()
            return
        self._connect_first()
        began = time.monotonic()
        while self.position < self.total and self.down is not None:
            data = self._source_read(self.position, min(CHUNK, self.total - self.position))
            self._forward(data, self.position)
            self.position += len(data)
            if self.rate_limit:
                ahead = self.position / self.rate_limit - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        self._await_ack()
        self.state = "complete" if self.position >= self.total else "incomplete"

    def _run_fanout(self) -> None:
        """The naive baseline: the source sends the whole stream to every receiver at once."""
        threads = []
        results: dict[int, int] = {}

        def send_all(target: int) -> None:
            got = self._handshake(target, wait=self.connect_timeout)
            sent = 0
            if got is not None:
                sock, pos = got
                with sock:
                    while pos < self.total:
                        data = self._source_read(pos, min(CHUNK, self.total - pos))
                        sock.sendall(data)
                        pos += len(data)
                        sent += len(data)
                    sock.settimeout(self.idle_timeout)
                    if sock.recv(1) != ACK:
                        sent = -1
            results[target] = sent

        for target in range(1, len(self.chain)):
            thread = threading.Thread(target=send_all, args=(target,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        self.bytes_sent = sum(results.values())
        self.position = self.total
        self.state = "complete" if all(v == self.total for v in results.values()) else "incomplete"

    # ---- receiver ---------------------------------------------------------------------------
    def _run_receiver(self) -> None:
        port = self.chain[self.index][1]
        server = socket.socket(socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.listen_host, port))
        server.listen(8)
        acceptor = threading.Thread(target=self._accept_loop, args=(server,), daemon=True)
        acceptor.start()
        self.state = "waiting"
        buffer = bytearray(CHUNK)
        try:
            if self.candidates:
                threading.Thread(target=self._connect_first, daemon=True).start()
            while self.position < self.total:
                sock = self._wait_upstream()
                if sock is None:
                    self.state = "incomplete"
                    return
                self.state = "receiving"
                try:
                    count = sock.recv_into(buffer, min(CHUNK, self.total - self.position))
                except TimeoutError:
                    # Quiet upstream: the stall may be further up (a bypass is coming). Wait,
                    # but not for ever.
                    if time.monotonic() - self.last_data > self.idle_timeout:
                        self.state = "incomplete"
                        return
                    continue
                except OSError:
                    count = 0
                if count == 0:
                    self._drop_upstream(sock)
                    continue
                self.last_data = time.monotonic()
                data = bytes(buffer[:count])
                self.bytes_received += count
                self._forward(data, self.position)
                self._store(data)
                self.position += count
            self._ack_upstream()
            self._await_ack()
            self.state = "complete" if not self.failed else "incomplete"
        finally:
            server.close()
            with self.cond:
                if self.upstream:
                    self.upstream.close()

    def _wait_upstream(self) -> socket.socket | None:
        # Before the first byte the chain may still be forming around a dead tray (each upstream
        # tries it for connect_timeout, then the next): wait for that too.
        first = self.position == 0 and self.bytes_received == 0
        deadline = time.monotonic() + self.idle_timeout + (2 * self.connect_timeout if first else 0)
        with self.cond:
            while self.upstream is None:
                self.idle = True
                self.cond.notify_all()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))
            self.idle = False
            return self.upstream

    def _drop_upstream(self, sock: socket.socket) -> None:
        with self.cond:
            if self.upstream is sock:
                self.upstream = None
                self.upstream_index = None
                sock.close()
            self.idle = True
            self.cond.notify_all()

    def _accept_loop(self, server: socket.socket) -> None:
        server.settimeout(1.0)
        while not self._stop.is_set():
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._handshake_in(conn)
            except (OSError, RelayError, ValueError):
                conn.close()

    def _handshake_in(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)
        line = _read_line(conn)
        if not line.startswith(MAGIC):
            raise RelayError("not a wideep relay")
        hello = json.loads(line[len(MAGIC) :])
        if hello.get("run") != self.run_id:
            _send_line(conn, {"ok": False, "why": "another run"})
            raise RelayError("another run")
        origin = int(hello.get("from", -1))
        self.downstream_ready.wait(self.connect_timeout + 10)
        with self.cond:
            live = self.upstream is not None and not _hung_up(self.upstream)
            if live and self.upstream_index is not None and origin >= self.upstream_index:
                _send_line(conn, {"ok": False, "why": "already fed by a tray further up"})
                raise RelayError("refused")
            old = self.upstream
            if old is not None:
                # Unblock the main loop's recv so that it stops at a chunk boundary.
                with contextlib.suppress(OSError):
                    old.shutdown(socket.SHUT_RDWR)
                while self.upstream is old and not self.idle:
                    self.cond.wait(1.0)
                if self.upstream is old:
                    self.upstream = None
                    old.close()
            conn.settimeout(self.stall_timeout)
            _send_line(conn, {"ok": True, "pos": self.position})
            self.upstream = conn
            self.upstream_index = origin
            self.cond.notify_all()

    # ---- forwarding -------------------------------------------------------------------------
    def _handshake(self, target: int, wait: float) -> tuple[socket.socket, int] | None:
        host, port = self.chain[target]
        deadline = time.monotonic() + wait
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=min(5.0, max(wait, 0.5)))
                sock.sendall(MAGIC + json.dumps({"run": self.run_id, "from": self.index}).encode() + b"\n")
                # The answer waits until the target has attached its own downstream.
                sock.settimeout(self.connect_timeout + 15)
                reply = json.loads(_read_line(sock))
                if not reply.get("ok"):
                    sock.close()
                    return None
                sock.settimeout(self.stall_timeout)
                return sock, int(reply["pos"])
            except (OSError, RelayError, ValueError):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.2)

    def _connect_first(self) -> None:
        """At start every receiver is still coming up: wait for the first, then try the next.

        A receiver connects from a thread while it already receives: what it forwarded
        meanwhile is in its ring and is replayed from the position the downstream reports.
        """
        try:
            for number, target in enumerate(list(self.candidates)):
                got = self._handshake(target, wait=self.connect_timeout if number == 0 else 5.0)
                with self.down_lock:
                    if got is not None and self._adopt(target, *got, upto=self.ring.end if self.index else self.position):
                        return
                    if got is None:
                        self.bypassed.append(target)
            self.candidates = []
        finally:
            self.downstream_ready.set()

    def _adopt(self, target: int, sock: socket.socket, start: int, upto: int) -> bool:
        """Make `target` our downstream: send it the stream from its position `start` to `upto`."""
        replay = self._source_read(start, upto - start) if self.index == 0 else self.ring.since(start, upto)
        try:
            if replay is None:
                raise OSError("the ring no longer holds what it lacks")
            sock.sendall(replay)
        except OSError:
            sock.close()
            self.bypassed.append(target)
            return False
        self.bytes_sent += len(replay)
        self.down, self.down_index = sock, target
        self.candidates = [c for c in self.candidates if c > target]
        return True

    def _forward(self, data: bytes, pos: int) -> None:
        with self.down_lock:
            if self.index != 0:
                self.ring.add(pos, data)
            if self.down is None:
                return
            try:
                self.down.sendall(data)
                self.bytes_sent += len(data)
            except TimeoutError:
                self._bypass(pos + len(data), retry_same=False)  # stalled: leave it behind
            except OSError:
                self._bypass(pos + len(data), retry_same=True)  # dropped: it may take us back

    def _bypass(self, upto: int, retry_same: bool) -> None:
        """The downstream died or stalled: reconnect to the next tray and replay what it lacks."""
        if retry_same and self.down_index is not None:
            self.candidates.insert(0, self.down_index)
        elif self.down_index is not None:
            self.bypassed.append(self.down_index)
        self._close_down()
        if self.index != 0 and self.position < self.total:
            # Mid-stream, an upstream that hung up means we were bypassed ourselves. (At the
            # end it hangs up after our acknowledgement, and we still owe our downstream.)
            with self.cond:
                upstream = self.upstream
            if upstream is None or _hung_up(upstream):
                self.candidates = []  # we were bypassed ourselves: do not cut in further down
                return
        while self.candidates:
            target = self.candidates.pop(0)
            got = self._handshake(target, wait=2.0)
            if got is None:
                self.bypassed.append(target)
            elif self._adopt(target, *got, upto=upto):
                return

    def _ack_upstream(self) -> None:
        """Tell the upstream the whole stream arrived here (it waits for this before it ends)."""
        with self.cond:
            upstream = self.upstream
        if upstream is not None:
            with contextlib.suppress(OSError):
                upstream.sendall(ACK)

    def _await_ack(self) -> None:
        """The last bytes may sit in socket buffers of a tray that died or froze: wait until the
        downstream says it has everything, else bypass it and replay the tail to the next one."""
        while True:
            with self.down_lock:
                sock = self.down
                if sock is None:
                    return
                try:
                    sock.settimeout(self.stall_timeout)
                    if sock.recv(1) == ACK:
                        return
                    raise OSError("closed without acknowledging the stream")
                except TimeoutError:
                    self._bypass(self.total, retry_same=False)
                except OSError:
                    self._bypass(self.total, retry_same=True)

    def _close_down(self) -> None:
        if self.down is not None:
            with contextlib.suppress(OSError):
                self.down.close()
        self.down, self.down_index = None, None

    # ---- storing ----------------------------------------------------------------------------
    def _store(self, data: bytes) -> None:
        pos = self.position
        view = memoryview(data)
        while view:
            while self._segment_at < len(self.segments) and self.segments[self._segment_at].end <= pos:
                self._segment_at += 1
            segment = self.segments[self._segment_at]
            take = min(len(view), segment.end - pos)
            if segment.entry.path in self.needs and self.dest:
                if self._writer is None or self._writer.segment is not segment:
                    self._writer = _FileWriter(self.dest, segment)
                self._writer.feed(view[:take], pos - segment.offset + segment.start)
                if pos + take == segment.end:
                    ok, why = self._writer.finish()
                    if ok:
                        self.published.append(segment.entry.path)
                    else:
                        self.failed[segment.entry.path] = why
                    self._writer = None
            pos += take
            view = view[take:]

    # ---- progress ---------------------------------------------------------------------------
    def _progress_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._write_progress()

    def _write_progress(self) -> None:
        if not self.progress_path:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.position / elapsed
        data = self.result() | {
            "rate_bytes_per_s": round(rate),
            "eta_s": round((self.total - self.position) / rate, 1) if rate > 0 and self.position < self.total else 0,
            "downstream": None if self.down_index is None else f"{self.chain[self.down_index][0]}",
            "updated": time.time(),
        }
        with contextlib.suppress(OSError):
            write_json_atomic(self.progress_path, data)


def _hung_up(sock: socket.socket) -> bool:
    """Did the peer close its side (even with unread data still queued)? Linux POLLRDHUP."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True


class _FileWriter:
    """One file being received: partial file, hash while streaming, publish only when verified."""

    def __init__(self, dest: str, segment: Segment) -> None:
        self.dest = dest
        self.segment = segment
        entry = segment.entry
        self.part = partial_path(dest, entry.path)
        os.makedirs(os.path.dirname(self.part), exist_ok=True)
        have = os.path.getsize(self.part) if os.path.exists(self.part) else 0
        # Bytes before the stream's start must already be here; beyond them we keep only whole
        # chunks we already had (the plan started the stream at the smallest such prefix).
        self.prefix = max(segment.start, min(have, entry.size) // CHUNK * CHUNK) if have >= segment.start else -1
        self.broken = self.prefix < 0
        self.handle = None
        if not self.broken:
            self.handle = open(self.part, "r+b" if have else "wb")  # noqa: SIM115 - closed in finish/abandon
            self.handle.truncate(self.prefix)
            self.digest = sha256_file(self.part, self.prefix)[1] if self.prefix else hashlib.sha256()
            self.handle.seek(self.prefix)

    def feed(self, data: memoryview, file_offset: int) -> None:
        if self.broken or self.handle is None:
            return
        skip = max(0, self.prefix - file_offset)
        if skip >= len(data):
            return
        chunk = data[skip:]
        self.handle.write(chunk)
        self.digest.update(chunk)

    def finish(self) -> tuple[bool, str]:
        entry = self.segment.entry
        if self.broken or self.handle is None:
            return False, "its partial file was gone before the stream reached it"
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        self.handle = None
        if self.digest.hexdigest() != entry.sha256:
            os.unlink(self.part)
            return False, "sha256 does not match the manifest; removed, it will be fetched again"
        final = os.path.join(self.dest, entry.path)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(self.part, final)
        directory = os.open(os.path.dirname(final), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        stamps = read_stamps(self.dest)
        stamps[entry.path] = stamp_of(final, entry.sha256)
        write_json_atomic(state_path(self.dest, "stamps.json"), stamps)
        return True, ""

    def abandon(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            self.handle.close()
            self.handle = None
