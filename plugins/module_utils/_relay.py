# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A pipelined chain broadcast of files: source -> tray 1 -> tray 2 -> ... over TCP.

Every relay forwards each block downstream as soon as it arrives, writes the files it needs to
DEST/.wideep/partial, hashes them, and publishes a file (fsync + rename) only when its sha256
matches the manifest. Time ~ W/B plus a per-hop fill of one block, whatever N.

Speed: the stream moves in blocks (1 MiB) over `lanes` TCP connections per hop (block k on
lane k mod lanes), so that several cores (and NICs) carry one hop; the receiver puts the blocks
back in order. The source sends with sendfile (no copy through Python); a relay receives each
block once into a recycled page-aligned buffer and, from that one buffer, forwards it (lane
threads), writes it (a writer thread) and hashes it (hasher threads, one file per thread at a
time), all of which release the GIL. Behind the writer, written ranges are flushed and dropped
from the page cache (sync_file_range + POSIX_FADV_DONTNEED) so 690 GB do not evict everything
else, and the final fsync of a file has little left to do. Verified files are published in
batches (fdatasync each, rename, one directory fsync and one stamps write per batch).

Faults: when a downstream tray dies or stalls (a send blocks longer than stall_timeout), its
upstream connects to the next tray of the chain, asks for its stream position and replays
from a ring of recent blocks (the source re-reads its files), so the rest of the chain goes on.
The bypassed tray keeps what it verified and is caught up by the next pass. A relay whose own
upstream hung up was bypassed itself and stops forwarding rather than cut in further down.

The protocol: the upstream opens lane 0 with one line
`WIDEEP3 {"run": id, "from": index, "session": s, "lanes": k, "plan": {"index": i, "chain":
[...], "starts": {...}}}`; the receiver answers `{"ok": true, "pos": p}` (its position in the
stream) or `{"ok": false, "why": ...}`, once its own downstream is attached; lanes 1..k-1 then
join with `WIDEEP3 {"run", "from", "session", "lane": i}` and get `{"ok": true}`. The plan (the
target's index, the chain, every file's start offset) lets a receiver that was started before the
pass was planned (await_plan: the broadcast role starts it in the same call that checks the tray)
learn its place, and pass the plan on to its own downstream. Then frames follow on every lane: a 12-byte header (stream
position u64, length u32, big-endian) and that many bytes. The receiver answers one byte `K`
on lane 0 when all of the stream arrived (an upstream ends only after that, so a tray that
froze with the tail in its socket buffers is bypassed too). The stream layout (which files, from
which offset) is the same on every relay, given by the plan.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import mmap
import os
import queue
import re
import select
import socket
import struct
import threading
import time
import uuid
from typing import Any

from ._weights import CHUNK, Segment, partial_path, read_stamps, sha256_file, stamp_of, state_path, write_json_atomic

MAGIC = b"WIDEEP3 "
ACK = b"K"  # downstream -> upstream, once the whole stream arrived
HEADER = struct.Struct(">QI")  # stream position, payload length
BLOCK = 1 << 20  # per-hop fill = BLOCK / link rate; make bench-relay: 4 MiB is no faster here
DROP_WINDOW = 32 << 20  # the writer flushes and drops the page cache in steps of this
ALIGN = 4096  # O_DIRECT: offsets, lengths and addresses on this grid (a page; any disk's logical block)
# A hasher may fall this far behind the writer (per hasher; the frames are held only while it
# is): the stream runs ahead of one file's hash, so that the next file's hash starts on another
# core instead of the stream waiting for one core's sha256 (make bench-relay, one hop on 2 cores,
# 1 lane: 1.68 GB/s with 16 frames, 1.74 with 256 MiB; with 4 lanes 2.06, above one core's sha256).
HASH_AHEAD = 256 << 20
STAGE = 8 << 20  # O_DIRECT: bytes per write (staged, or frames' bytes gathered for one pwritev)
PAGE_CACHE = ("direct", "drop", "keep")
HASHERS = 2
# TCP congestion control of the connections a member sends on (make bench-weights, 2026-12-02:
# with BBR, this host's default, an 8-tray chain took 1.14-1.15 x W/B, with CUBIC 1.09-1.11; loaded 1.24 and 1.15).
CONGESTION = "cubic"


def transport_problems(lanes: Any, block_bytes: Any, socket_buffer: Any = 0, names: dict[str, str] | None = None, congestion: Any = CONGESTION) -> list[str]:
    """The bounds of the transport settings, one message per bad value; `names` says what the
    caller calls each one (the broadcast role names its variables)."""
    named = {"lanes": "lanes", "block_bytes": "block_bytes", "socket_buffer": "socket_buffer", "congestion": "congestion", **(names or {})}
    problems = []
    if not 1 <= int(lanes) <= 64:
        problems.append(f"{named['lanes']} is {lanes}: use 1 to 64 TCP connections per hop")
    if not (65536 <= int(block_bytes) <= 1 << 30 and int(block_bytes) % 4096 == 0):
        problems.append(f"{named['block_bytes']} is {block_bytes}: use a multiple of 4096 from 65536 to 1073741824 (1 GiB)")
    if int(socket_buffer) < 0:
        problems.append(f"{named['socket_buffer']} is {socket_buffer}: use 0 (kernel autotuning) or a size in bytes")
    if not isinstance(congestion, str) or not re.fullmatch(r"[a-z0-9_]{0,15}", congestion):
        problems.append(
            f"{named['congestion']} is {congestion!r}: use the name of a TCP congestion control the trays' kernel has"
            " (cubic, bbr, reno, ...: /proc/sys/net/ipv4/tcp_available_congestion_control) or '' for the kernel's default"
        )
    return problems


class RelayError(Exception):
    pass


def _send_line(sock: socket.socket, data: dict[str, Any]) -> None:
    sock.sendall(json.dumps(data).encode() + b"\n")


def _read_line(sock: socket.socket, limit: int = 4096) -> bytes:
    """One handshake line, and not a byte beyond it (frames may follow on the same socket)."""
    line = b""
    while not line.endswith(b"\n"):
        # Peek, then take exactly up to the newline: a plan-carrying hello is kilobytes long.
        peeked = sock.recv(min(65536, limit + 1 - len(line)), socket.MSG_PEEK)
        if not peeked:
            raise RelayError("connection closed during the handshake")
        end = peeked.find(b"\n")
        line += sock.recv(len(peeked) if end < 0 else end + 1)
        if len(line) > limit:
            raise RelayError("handshake line too long")
    return line


# A hello that carries the plan holds every file's start offset: room for ~100k files.
PLAN_LINE_LIMIT = 8 << 20


# ---- kernel helpers (Linux; without them the relay still works, only slower) -------------------
_SYNC_FILE_RANGE_WAIT_BEFORE, _SYNC_FILE_RANGE_WRITE, _SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4


def _load_libc() -> Any:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        return libc
    return None


_LIBC = _load_libc()


def _flush_range(fd: int, offset: int, length: int, wait: bool) -> None:
    """Start (or start and wait for) writeback of a range; after waiting, drop it from the cache."""
    if length <= 0:
        return
    if _LIBC is not None:
        flags = _SYNC_FILE_RANGE_WRITE | ((_SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WAIT_AFTER) if wait else 0)
        _LIBC.sync_file_range(fd, offset, length, flags)
    if wait and hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _kernel_timeouts(sock: socket.socket, send: float, recv: float) -> None:
    """Blocking socket, timeouts in the kernel (SO_SNDTIMEO/SO_RCVTIMEO): one syscall moves a
    whole block (Python's own timeouts make the socket non-blocking: a syscall per few KiB).
    A send that makes no progress for `send` seconds fails with EAGAIN (BlockingIOError)."""
    sock.settimeout(None)
    for option, seconds in ((socket.SO_SNDTIMEO, send), (socket.SO_RCVTIMEO, recv)):
        whole = int(seconds)
        sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int((seconds - whole) * 1e6)))


def _set_congestion(sock: socket.socket, name: str) -> str:
    """Ask for congestion control `name` on a socket ('' keeps the kernel's default); returns the
    one in use. A kernel without it (ENOENT), or a process not allowed it (EPERM), keeps the
    default: a transfer is not refused over a tuning choice, and the result says what ran."""
    if name:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0", 1)[0].decode()
    except OSError:
        return ""


def _set_buffers(sock: socket.socket, size: int) -> None:
    if size > 0:
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, size)


# ---- blocks ------------------------------------------------------------------------------------
def _hash_depth(block: int) -> int:
    """Frames queued for one hasher: HASH_AHEAD of them, at least 16."""
    return max(16, HASH_AHEAD // max(1, block))


class _Pool:
    """Recycled page-aligned buffers of one block (fresh memory costs a page fault per 4 KiB)."""

    def __init__(self, size: int, keep: int = 32) -> None:
        self.size = size
        self.keep = keep
        self.free: list[mmap.mmap] = []
        self.lock = threading.Lock()

    def get(self) -> mmap.mmap:
        with self.lock:
            if self.free:
                return self.free.pop()
        return mmap.mmap(-1, self.size)

    def put(self, buf: mmap.mmap) -> None:
        with self.lock:
            if len(self.free) < self.keep:
                self.free.append(buf)


class _Frame:
    """Stream bytes [pos, pos + size): in a pooled buffer (relays), or read from files (source).

    Reference counted: the receiving thread, the ring, a lane sender and the writer/hashers each
    hold it while they use it; the buffer goes back to the pool when the last one lets go.
    """

    __slots__ = ("buf", "lock", "offset", "parent", "pool", "pos", "refs", "size")

    def __init__(self, pos: int, size: int, buf: Any = None, pool: _Pool | None = None, offset: int = 0, parent: _Frame | None = None) -> None:
        self.pos, self.size, self.buf, self.pool, self.offset, self.parent = pos, size, buf, pool, offset, parent
        self.refs = 1
        self.lock = threading.Lock()

    @property
    def end(self) -> int:
        return self.pos + self.size

    def view(self) -> memoryview:
        return memoryview(self.buf)[self.offset : self.offset + self.size]

    def hold(self) -> _Frame:
        with self.lock:
            self.refs += 1
        return self

    def release(self) -> None:
        with self.lock:
            self.refs -= 1
            last = self.refs == 0
        if last:
            if self.parent is not None:
                self.parent.release()
            elif self.pool is not None and self.buf is not None:
                self.pool.put(self.buf)
            self.buf = None

    def tail(self, pos: int) -> _Frame:
        """A frame for [pos, end) sharing this one's buffer (holds this one until released)."""
        if pos <= self.pos:
            return self.hold()
        cut = pos - self.pos
        return _Frame(pos, self.size - cut, self.buf, None, self.offset + cut, self.hold())


class _Ring:
    """The last `capacity` bytes of the stream, to replay to a new downstream after a bypass."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.frames: collections.deque[_Frame] = collections.deque()
        self.size = 0
        self.end = 0
        self.lock = threading.Lock()

    def add(self, frame: _Frame) -> None:
        with self.lock:
            self.frames.append(frame.hold())
            self.size += frame.size
            self.end = frame.end
            while len(self.frames) > 1 and self.size - self.frames[0].size >= self.capacity:
                old = self.frames.popleft()
                self.size -= old.size
                old.release()

    def since(self, pos: int, upto: int) -> list[_Frame] | None:
        """Held frames covering [pos, upto), or None when the ring no longer reaches back to pos."""
        with self.lock:
            if pos == upto:
                return []
            if not self.frames or self.frames[0].pos > pos:
                return None
            return [f.tail(pos) for f in self.frames if f.end > pos and f.pos < upto]

    def clear(self) -> None:
        with self.lock:
            while self.frames:
                self.frames.popleft().release()
            self.size = 0


# ---- downstream: lane senders --------------------------------------------------------------------
class _Downstream:
    """The connections to one downstream member; one sender thread per lane."""

    def __init__(self, relay: Relay, target: int, socks: list[socket.socket]) -> None:
        self.relay = relay
        self.target = target
        self.socks = socks
        self.queues: list[queue.Queue[_Frame | None]] = [queue.Queue(maxsize=4) for _sock in socks]
        self.error: str | None = None  # "stall" or "drop" once a lane failed
        self.closed = False
        self.threads = [threading.Thread(target=self._lane, args=(i,), daemon=True) for i in range(len(socks))]
        for thread in self.threads:
            thread.start()

    def _lane(self, lane: int) -> None:
        sock, lane_queue = self.socks[lane], self.queues[lane]
        while True:
            frame = lane_queue.get()
            if frame is None:
                return
            try:
                if self.error is None and not self.closed:
                    self.relay._send_frame(sock, frame)
                    with self.relay.count_lock:
                        self.relay.bytes_sent += frame.size
            except (TimeoutError, BlockingIOError):  # no progress for stall_timeout
                self.error = self.error or "stall"
            except RelayError as exc:
                self.relay.fatal = str(exc)
                self.error = self.error or "drop"
            except OSError:
                self.error = self.error or "drop"
            finally:
                frame.release()
            if self.error is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def put(self, frame: _Frame) -> bool:
        """Queue a frame (held for the lane); False when the downstream failed (frame not queued)."""
        lane_queue = self.queues[(frame.pos // self.relay.block) % len(self.queues)]
        frame.hold()
        while self.error is None:
            try:
                lane_queue.put(frame, timeout=0.2)
                return True
            except queue.Full:
                continue
        frame.release()
        return False

    def finish(self) -> bool:
        """Wait until every queued frame was sent; False when a lane failed."""
        for lane_queue in self.queues:
            while True:
                try:
                    lane_queue.put(None, timeout=0.2)
                    break
                except queue.Full:
                    if self.error is not None:
                        self._drain(lane_queue)
        for thread in self.threads:
            thread.join()
        return self.error is None

    @staticmethod
    def _drain(lane_queue: queue.Queue[_Frame | None]) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                frame = lane_queue.get_nowait()
                if frame is not None:
                    frame.release()

    def close(self) -> None:
        self.closed = True
        self.error = self.error or "closed"
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for lane_queue in self.queues:
            self._drain(lane_queue)
            with contextlib.suppress(queue.Full):
                lane_queue.put_nowait(None)
        for thread in self.threads:
            thread.join(5.0)
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()


class _Upstream:
    """The connections from the current upstream member (one session, up to `lanes` lanes)."""

    def __init__(self, session: str, origin: int, lanes: int, control: socket.socket) -> None:
        self.session = session
        self.origin = origin
        self.lanes = lanes
        self.socks = [control]
        self.dead = False  # lane 0 ended

    def close(self) -> None:
        self.dead = True
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


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
        lanes: int = 2,
        block: int = BLOCK,
        socket_buffer: int = 0,
        page_cache: str = "direct",
        starts: dict[str, int] | None = None,
        congestion: str = CONGESTION,
    ) -> None:
        if lanes < 1 or block < 4096 or block % 4096 or page_cache not in PAGE_CACHE:
            raise RelayError("lanes >= 1, block a multiple of 4096 and page_cache direct|drop|keep")
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
        self.lanes = lanes
        self.block = block
        self.socket_buffer = socket_buffer
        self.page_cache = page_cache
        self.congestion = congestion
        self.congestion_used: str | None = None  # what the kernel gave the connections we send on
        # The plan's start offsets: given, each downstream's hello carries the plan (chain, starts,
        # its index), so that a receiver started before the plan existed (await_plan) learns it.
        self.starts = starts
        self.pool = _Pool(block, keep=32 + HASHERS * _hash_depth(block))
        self.last_data = time.monotonic()
        self.position = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.count_lock = threading.Lock()
        self.started = time.monotonic()
        self.started_at = time.time()
        self.finished_at: float | None = None
        # Wall clock of the first byte received (the source: sent) and of the last (a receiver:
        # the whole stream is here; the source: its downstream acknowledged it), to split a pass's
        # time into the chain's start, the stream, each hop's lag and the verification after it.
        self.first_byte_at: float | None = None
        self.last_byte_at: float | None = None
        self.state = "starting"
        self.bypassed: list[int] = []
        self.published: list[str] = []
        self.failed: dict[str, str] = {}
        self.fatal: str | None = None
        self.cond = threading.Condition()
        self.down_lock = threading.RLock()
        self.up: _Upstream | None = None
        self.pending: dict[int, _Frame] = {}
        self.down: _Downstream | None = None
        self.down_index: int | None = None
        self.candidates = [] if fanout else list(range(index + 1, len(chain)))
        # Set once this relay has a downstream (or knows it has none). A receiver answers its
        # upstream's handshake only then, so the chain comes up from the tail before any byte
        # flows and nothing has to be replayed at the start.
        self.downstream_ready = threading.Event()
        if not self.candidates or index == 0:
            self.downstream_ready.set()
        self._store: _Store | None = None
        self._source_fds: dict[str, int] = {}
        self._fd_lock = threading.Lock()
        self._stop = threading.Event()

    # ---- public -----------------------------------------------------------------------------
    def run(self, server: socket.socket | None = None, first: tuple[socket.socket, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Run to the end. A receiver may be handed its listening socket and the connection
        whose hello brought the plan (await_plan); otherwise it binds chain[index]'s port."""
        progress = threading.Thread(target=self._progress_loop, daemon=True)
        progress.start()
        try:
            if self.index == 0:
                self._run_source()
            else:
                self._run_receiver(server, first)
        finally:
            self.finished_at = time.time()
            self._stop.set()
            if self._store is not None:
                self._store.close(abandon=True)
            self._close_down()
            self.ring.clear()
            with self.cond:
                for frame in self.pending.values():
                    frame.release()
                self.pending.clear()
            for fd in self._source_fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
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
            "first_byte_at": self.first_byte_at,
            "last_byte_at": self.last_byte_at,
            "published": list(self.published),
            "failed": dict(self.failed),
            "bypassed": [f"{self.chain[i][0]}:{self.chain[i][1]}" for i in self.bypassed],
            "lanes": self.lanes,
            "congestion": self.congestion_used,
        }

    # ---- source -----------------------------------------------------------------------------
    def _frames(self, start: int, upto: int) -> list[_Frame]:
        """Source frames (no buffer: sent from the files) for [start, upto), on the block grid."""
        frames = []
        pos = start
        while pos < upto:
            end = min(upto, (pos // self.block + 1) * self.block)
            frames.append(_Frame(pos, end - pos))
            pos = end
        return frames

    def _source_fd(self, path: str) -> int:
        with self._fd_lock:
            fd = self._source_fds.get(path)
            if fd is None:
                fd = self._source_fds[path] = os.open(os.path.join(str(self.source_dir), path), os.O_RDONLY)
            return fd

    def _send_frame(self, sock: socket.socket, frame: _Frame) -> None:
        sock.sendall(HEADER.pack(frame.pos, frame.size))
        if frame.buf is not None:
            sock.sendall(frame.view())
            return
        pos, size = frame.pos, frame.size
        for segment in self.segments:
            if segment.end <= pos or size <= 0:
                continue
            take = min(size, segment.end - pos)
            self._sendfile(sock, self._source_fd(segment.entry.path), segment.start + pos - segment.offset, take, segment.entry.path)
            pos += take
            size -= take

    def _sendfile(self, sock: socket.socket, fd: int, offset: int, count: int, name: str) -> None:
        """os.sendfile on a blocking socket (SO_SNDTIMEO: EAGAIN after stall_timeout of no progress)."""
        while count > 0:
            sent = os.sendfile(sock.fileno(), fd, offset, count)
            if sent == 0:
                raise RelayError(f"source file {name} is shorter than the manifest says")
            offset += sent
            count -= sent

    def _run_source(self) -> None:
        self.state = "sending"
        if self.fanout:
            self._run_fanout()
            return
        self._connect_first()
        began = time.monotonic()
        self.first_byte_at = time.time()
        while self.position < self.total and self.down is not None:
            for frame in self._frames(self.position, min(self.total, self.position + self.block)):
                self._forward(frame)
                frame.release()
                self.position = frame.end
            if self.fatal:
                raise RelayError(self.fatal)
            if self.rate_limit:
                ahead = self.position / self.rate_limit - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        self._finish_down()
        self.last_byte_at = time.time()
        if self.fatal:
            raise RelayError(self.fatal)
        self.state = "complete" if self.position >= self.total else "incomplete"

    def _run_fanout(self) -> None:
        """The naive baseline: the source sends the whole stream to every receiver at once."""
        threads = []
        results: dict[int, int] = {}

        def send_all(target: int) -> None:
            got = self._handshake(target, wait=self.connect_timeout)
            ok = False
            if got is not None:
                socks, pos = got
                down = _Downstream(self, target, socks)
                try:
                    for frame in self._frames(pos, self.total):
                        queued = down.put(frame)
                        frame.release()
                        if not queued:
                            break
                    if down.finish():
                        socks[0].settimeout(self.idle_timeout)
                        ok = socks[0].recv(1) == ACK
                except OSError:
                    ok = False
                finally:
                    down.close()
            results[target] = ok

        for target in range(1, len(self.chain)):
            thread = threading.Thread(target=send_all, args=(target,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        self.position = self.total
        self.state = "complete" if all(results.values()) else "incomplete"

    # ---- receiver ---------------------------------------------------------------------------
    def _run_receiver(self, server: socket.socket | None, first: tuple[socket.socket, dict[str, Any]] | None) -> None:
        if server is None:
            server = listen(self.chain[self.index][1], self.listen_host, self.socket_buffer)
        acceptor = threading.Thread(target=self._accept_loop, args=(server,), daemon=True)
        acceptor.start()
        self.state = "waiting"
        if self.dest:
            self._store = _Store(self)
        try:
            if self.candidates:
                threading.Thread(target=self._connect_first, daemon=True).start()
            if first is not None:
                threading.Thread(target=self._handshake_in_safe, args=first, daemon=True).start()
            while self.position < self.total:
                frame = self._next_frame()
                if frame is None:
                    self.state = "incomplete"
                    return
                self.state = "receiving"
                try:
                    self._forward(frame)
                    if self._store is not None:
                        self._store.put(frame)
                finally:
                    frame.release()
            self.last_byte_at = time.time()
            self._ack_upstream()
            self._finish_down()
            if self._store is not None:
                self._store.close(abandon=False)
            self.state = "complete" if not self.failed else "incomplete"
        finally:
            server.close()
            with self.cond:
                if self.up is not None:
                    self.up.close()
                    for sock in self.up.socks:
                        sock.close()

    def _next_frame(self) -> _Frame | None:
        """The frame at our position, once a lane delivered it; None after idle_timeout of nothing.

        Before the first byte the chain may still be forming around a dead tray (each upstream
        tries it for connect_timeout, then the next): that is waited for too."""
        with self.cond:
            while self.position not in self.pending:
                grace = 2 * self.connect_timeout if self.bytes_received == 0 else 0
                if time.monotonic() - self.last_data > self.idle_timeout + grace:
                    return None
                self.cond.wait(0.5)
            frame = self.pending.pop(self.position)
            self.position = frame.end
            self.cond.notify_all()
            return frame

    def _accept_loop(self, server: socket.socket) -> None:
        server.settimeout(1.0)
        while not self._stop.is_set():
            try:
                conn, _addr = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            # A handshake can wait for our downstream: never hold up the next lane's accept.
            threading.Thread(target=self._handshake_in_safe, args=(conn,), daemon=True).start()

    def _handshake_in_safe(self, conn: socket.socket, hello: dict[str, Any] | None = None) -> None:
        """An upstream's connection: its hello (read here unless await_plan read it already)."""
        try:
            self._handshake_hello(conn, read_hello(conn) if hello is None else hello)
        except (OSError, RelayError, ValueError):
            conn.close()

    def _handshake_hello(self, conn: socket.socket, hello: dict[str, Any]) -> None:
        if hello.get("run") != self.run_id:
            _send_line(conn, {"ok": False, "why": "another run"})
            raise RelayError("another run")
        origin = int(hello.get("from", -1))
        lane = int(hello.get("lane", 0))
        if lane > 0:
            with self.cond:
                up = self.up
                if up is None or up.session != hello.get("session") or up.dead or len(up.socks) >= up.lanes:
                    _send_line(conn, {"ok": False, "why": "no such session"})
                    raise RelayError("no such session")
                _kernel_timeouts(conn, send=self.stall_timeout, recv=1.0)
                _send_line(conn, {"ok": True})
                up.socks.append(conn)
            threading.Thread(target=self._read_lane, args=(up, conn, False), daemon=True).start()
            return
        self.downstream_ready.wait(self.connect_timeout + 10)
        with self.cond:
            up = self.up
            live = up is not None and not up.dead and not _hung_up(up.socks[0])
            if live and up is not None and origin >= up.origin:
                _send_line(conn, {"ok": False, "why": "already fed by a tray further up"})
                raise RelayError("refused")
            if up is not None:
                up.close()  # its lanes stop; what they had beyond our position is dropped
            for frame in self.pending.values():
                frame.release()
            self.pending.clear()
            _kernel_timeouts(conn, send=self.stall_timeout, recv=1.0)
            up = _Upstream(str(hello.get("session", "")), origin, max(1, int(hello.get("lanes", 1))), conn)
            _send_line(conn, {"ok": True, "pos": self.position})
            self.up = up
            self.cond.notify_all()
        self._read_lane(up, conn, True)

    def _recv_exact(self, up: _Upstream, sock: socket.socket, view: memoryview) -> bool:
        got = 0
        while got < len(view):
            try:
                count = sock.recv_into(view[got:], len(view) - got, socket.MSG_WAITALL)
            except (TimeoutError, BlockingIOError):  # SO_RCVTIMEO: a quiet second
                if up is not self.up or up.dead or self._stop.is_set():
                    return False
                continue
            except OSError:
                return False
            if count == 0:
                return False
            got += count
            self.last_data = time.monotonic()
            with self.count_lock:
                if not self.bytes_received:
                    self.first_byte_at = time.time()
                self.bytes_received += count
        return True

    def _read_lane(self, up: _Upstream, sock: socket.socket, control: bool) -> None:
        """Frames from one lane into `pending`; a frame too far ahead waits (bounded memory)."""
        header = bytearray(HEADER.size)
        window = self.block * max(4, 2 * up.lanes)
        try:
            while not self._stop.is_set():
                if not self._recv_exact(up, sock, memoryview(header)):
                    return
                pos, size = HEADER.unpack(header)
                if size > self.block or pos + size > self.total or size == 0:
                    return  # not our stream: drop the lane
                with self.cond:
                    while pos >= self.position + window and up is self.up and not self._stop.is_set():
                        self.cond.wait(0.5)
                    if up is not self.up:
                        return
                frame = _Frame(pos, size, self.pool.get(), self.pool)
                if not self._recv_exact(up, sock, frame.view()):
                    frame.release()
                    return
                with self.cond:
                    if up is self.up and pos >= self.position and pos not in self.pending:
                        self.pending[pos] = frame
                        self.cond.notify_all()
                    else:
                        frame.release()
        finally:
            with self.cond:
                if control:
                    up.dead = True
                    self.cond.notify_all()
                if up is not self.up:
                    sock.close()

    # ---- forwarding -------------------------------------------------------------------------
    def _connect(self, host: str, port: int, timeout: float) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        _set_buffers(sock, self.socket_buffer)
        self.congestion_used = _set_congestion(sock, self.congestion)
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _handshake(self, target: int, wait: float) -> tuple[list[socket.socket], int] | None:
        host, port = self.chain[target]
        deadline = time.monotonic() + wait
        session = uuid.uuid4().hex
        while True:
            socks: list[socket.socket] = []
            try:
                sock = self._connect(host, port, min(5.0, max(wait, 0.5)))
                socks.append(sock)
                hello: dict[str, Any] = {"run": self.run_id, "from": self.index, "session": session, "lanes": self.lanes}
                if self.starts is not None:
                    hello["plan"] = {"index": target, "chain": [f"{h}:{p}" for h, p in self.chain], "starts": self.starts}
                sock.sendall(MAGIC + json.dumps(hello).encode() + b"\n")
                # The answer waits until the target has attached its own downstream.
                sock.settimeout(self.connect_timeout + 15)
                reply = json.loads(_read_line(sock))
                if not reply.get("ok"):
                    sock.close()
                    return None
                for lane in range(1, self.lanes):
                    extra = self._connect(host, port, 10.0)
                    socks.append(extra)
                    extra.sendall(MAGIC + json.dumps({"run": self.run_id, "from": self.index, "session": session, "lane": lane}).encode() + b"\n")
                    if not json.loads(_read_line(extra)).get("ok"):
                        raise RelayError("a lane was refused")
                for each in socks:
                    _kernel_timeouts(each, send=self.stall_timeout, recv=self.stall_timeout)
                return socks, int(reply["pos"])
            except (OSError, RelayError, ValueError):
                for each in socks:
                    each.close()
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

    def _adopt(self, target: int, socks: list[socket.socket], start: int, upto: int) -> bool:
        """Make `target` our downstream: send it the stream from its position `start` to `upto`."""
        replay = self._frames(start, upto) if self.index == 0 else self.ring.since(start, upto)
        down = _Downstream(self, target, socks)
        ok = replay is not None
        for frame in replay or []:
            ok = ok and down.put(frame)
            frame.release()
        if not ok:
            down.close()
            self.bypassed.append(target)
            return False
        self.down, self.down_index = down, target
        self.candidates = [c for c in self.candidates if c > target]
        return True

    def _forward(self, frame: _Frame) -> None:
        with self.down_lock:
            if self.index != 0 and (self.down is not None or self.candidates):
                self.ring.add(frame)  # to replay after a bypass (the chain's tail has nobody to)
            while self.down is not None:
                if self.down.put(frame):
                    return
                # a lane failed: stalled (leave it behind) or dropped (it may take us back)
                self._bypass(frame.pos, retry_same=self.down.error == "drop")

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
                up = self.up
            if up is None or up.dead or _hung_up(up.socks[0]):
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
            up = self.up
        if up is not None:
            with contextlib.suppress(OSError):
                up.socks[0].sendall(ACK)

    def _finish_down(self) -> None:
        """The last bytes may sit in socket buffers of a tray that died or froze: wait until the
        downstream says it has everything, else bypass it and replay the tail to the next one."""
        while True:
            with self.down_lock:
                down = self.down
                if down is None:
                    return
                if not down.finish():
                    self._bypass(self.total, retry_same=down.error == "drop")
                    continue
                sock = down.socks[0]
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
            self.down.close()
        self.down, self.down_index = None, None

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


def listen(port: int, host: str = "0.0.0.0", socket_buffer: int = 0) -> socket.socket:
    """The receiver's listening socket (raises OSError, e.g. EADDRINUSE, for the caller to name)."""
    server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _set_buffers(server, socket_buffer)
        server.bind((host, port))
        server.listen(16)
    except OSError:
        server.close()
        raise
    return server


def read_hello(conn: socket.socket) -> dict[str, Any]:
    conn.settimeout(10.0)
    line = _read_line(conn, PLAN_LINE_LIMIT)
    if not line.startswith(MAGIC):
        raise RelayError("not a wideep relay (or another version of it)")
    hello = json.loads(line[len(MAGIC) :])
    if not isinstance(hello, dict):
        raise RelayError("a handshake that is not an object")
    return hello


def parse_address(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, _sep, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def plan_problem(plan: dict[str, Any]) -> str | None:
    """What is wrong with a plan brought by a hello, or None."""
    try:
        index, chain, starts = int(plan["index"]), [parse_address(str(m)) for m in plan["chain"]], plan["starts"]
        if not 0 < index < len(chain) or not isinstance(starts, dict) or not all(isinstance(v, int) and v >= 0 for v in starts.values()):
            return "a plan whose index, chain or starts do not fit"
    except (KeyError, TypeError, ValueError):
        return "a malformed plan"
    return None


def await_plan(server: socket.socket, run_id: str, timeout: float) -> tuple[socket.socket, dict[str, Any]] | None:
    """A receiver started before its pass was planned: wait for the first upstream whose hello
    names this run and carries the plan ({index, chain, starts}); others are refused. Returns
    that connection and its hello (hand both to Relay.run), or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
        try:
            conn, _addr = server.accept()
        except TimeoutError:
            continue
        try:
            hello = read_hello(conn)
            plan = hello.get("plan")
            if hello.get("run") != run_id:
                why: str | None = "another run"
            elif int(hello.get("lane", 0)) != 0 or not isinstance(plan, dict):
                why = "no plan yet"
            else:
                why = plan_problem(plan)
            if why is None:
                return conn, hello
            _send_line(conn, {"ok": False, "why": why})
        except (OSError, RelayError, ValueError, KeyError, TypeError):
            pass
        conn.close()
    return None


def _hung_up(sock: socket.socket) -> bool:
    """Did the peer close its side (even with unread data still queued)? Linux POLLRDHUP."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True


# ---- storing: writer -> hashers -> publisher ----------------------------------------------------
class _Store:
    """Writes the needed files from the frames in stream order (one thread), hashes them (one
    thread per file, HASHERS at a time) and publishes verified files in batches (one thread)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        # (deep enough to cover one STAGE write of page_cache: direct)
        self.frames: queue.Queue[_Frame | None] = queue.Queue(maxsize=16)
        depth = _hash_depth(relay.block)
        self.hash_queues: list[queue.Queue[tuple[_FileWriter | None, _Frame | None, int, int]]] = [queue.Queue(maxsize=depth) for _slot in range(HASHERS)]
        self.publish_queue: queue.Queue[_FileWriter | None] = queue.Queue()
        self.writer: _FileWriter | None = None
        self.files = 0
        self.segment_at = 0
        self.empty_done: set[str] = set()
        self.abandoned = False
        self.threads = [threading.Thread(target=self._write_loop, daemon=True)]
        self.threads += [threading.Thread(target=self._hash_loop, args=(q,), daemon=True) for q in self.hash_queues]
        self.publisher = threading.Thread(target=self._publish_loop, daemon=True)
        for thread in [*self.threads, self.publisher]:
            thread.start()

    def put(self, frame: _Frame) -> None:
        self.frames.put(frame.hold())

    def close(self, abandon: bool) -> None:
        """Wait for everything queued to be written, hashed and published (or, on abandon, stop:
        what was written stays in the partial files, a later pass resumes from it)."""
        if self.abandoned:
            return
        self.abandoned = abandon
        if abandon:
            with contextlib.suppress(queue.Empty):
                while True:
                    frame = self.frames.get_nowait()
                    if frame is not None:
                        frame.release()
        self.frames.put(None)
        for thread in self.threads:
            thread.join()
        self.publish_queue.put(None)
        self.publisher.join()
        self.abandoned = True

    # writer thread
    def _write_loop(self) -> None:
        relay = self.relay
        segments = relay.segments
        self._start_empty(0)
        while True:
            frame = self.frames.get()
            if frame is None:
                break
            try:
                if self.abandoned:
                    continue
                pos, view = frame.pos, frame.view()
                while view:
                    while self.segment_at < len(segments) and segments[self.segment_at].end <= pos:
                        self.segment_at += 1
                        self._start_empty(self.segment_at)
                    segment = segments[self.segment_at]
                    take = min(len(view), segment.end - pos)
                    if segment.entry.path in relay.needs:
                        if self.writer is None or self.writer.segment is not segment:
                            self.writer = _FileWriter(str(relay.dest), segment, slot=self.files % HASHERS, mode=relay.page_cache)
                            self.files += 1
                        writer = self.writer
                        start = pos - segment.offset + segment.start
                        try:
                            # where these bytes lie in their buffer (pooled buffers are page-aligned)
                            address = frame.offset + pos - frame.pos if isinstance(frame.buf, mmap.mmap) else -1
                            done = writer.write(view[:take], start, address, frame)
                        except OSError as exc:  # a full or failing disk: this file fails, forwarding goes on
                            writer.fail(f"writing {writer.part} failed: {exc}")
                            done = None
                        if done:
                            self.hash_queues[writer.slot].put((writer, frame.hold(), pos - frame.pos + done[0], done[1]))
                        if pos + take == segment.end:
                            with contextlib.suppress(OSError):
                                writer.end_write()
                            self.hash_queues[writer.slot].put((writer, None, 0, 0))
                            self.writer = None
                    pos += take
                    view = view[take:]
                del view
            finally:
                frame.release()
        if self.writer is not None:
            self.writer.abandon()
        elif not self.abandoned:
            for at in range(len(segments)):  # zero-byte files at the stream's end
                self._start_empty(at)
        for hash_queue in self.hash_queues:
            hash_queue.put((None, None, 0, 0))

    def _start_empty(self, at: int) -> None:
        """Files of zero bytes (from their start) carry no frame: publish them when passed."""
        segments = self.relay.segments
        while at < len(segments) and segments[at].length == 0:
            segment = segments[at]
            if segment.entry.path in self.relay.needs and segment.entry.path not in self.empty_done:
                self.empty_done.add(segment.entry.path)
                writer = _FileWriter(str(self.relay.dest), segment, slot=0, mode="keep")
                writer.end_write()
                self.publish_queue.put(writer)
            at += 1
            self.segment_at = max(self.segment_at, at)

    # hasher threads
    def _hash_loop(self, hash_queue: queue.Queue[tuple[_FileWriter | None, _Frame | None, int, int]]) -> None:
        while True:
            writer, frame, offset, length = hash_queue.get()
            if writer is None:
                return
            if frame is None:
                self.publish_queue.put(writer)
                continue
            try:
                writer.digest.update(frame.view()[offset : offset + length])
            finally:
                frame.release()

    # publisher thread
    def _publish_loop(self) -> None:
        relay = self.relay
        while True:
            batch = [self.publish_queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.publish_queue.get_nowait())
            stop = None in batch
            writers = [w for w in batch if w is not None]
            if writers:
                done = []
                for writer in writers:
                    try:
                        ok, why = writer.finish()
                    except OSError as exc:
                        writer.abandon()
                        ok, why = False, f"publishing failed: {exc}"
                    if ok:
                        done.append(writer)
                    else:
                        relay.failed[writer.segment.entry.path] = why
                try:
                    for directory in {os.path.dirname(os.path.join(str(relay.dest), w.segment.entry.path)) for w in done}:
                        fd = os.open(directory, os.O_RDONLY)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                    if done:
                        stamps = read_stamps(str(relay.dest))
                        for writer in done:
                            final = os.path.join(str(relay.dest), writer.segment.entry.path)
                            stamps[writer.segment.entry.path] = stamp_of(final, writer.segment.entry.sha256)
                        write_json_atomic(state_path(str(relay.dest), "stamps.json"), stamps)
                except OSError as exc:  # published but not recorded: the next inspection hashes them
                    relay.failed["stamps.json"] = f"recording stamps failed: {exc}"
                relay.published.extend(w.segment.entry.path for w in done)
            if stop:
                return


class _FileWriter:
    """One file being received: partial file, hashed, published only when verified.

    Modes (the relay's page_cache): `direct` writes with O_DIRECT, bypassing the page cache (no
    copy into it, no writeback or dropping afterwards); where the filesystem refuses O_DIRECT
    (tmpfs, some overlays) the file is written as with `drop`. O_DIRECT needs the file offset,
    the length and the memory address aligned to ALIGN: bytes whose offset in their buffer
    matches their offset in the file (a stream whose files start on the grid) are written from
    the frame itself; others are copied into an aligned staging buffer first. The file's last
    bytes go out padded to ALIGN, then the file is truncated to its size. `drop` writes through
    the page cache and flushes and drops what it wrote behind the writer; `keep` leaves it cached.
    """

    def __init__(self, dest: str, segment: Segment, slot: int, mode: str) -> None:
        self.dest = dest
        self.segment = segment
        self.slot = slot
        self.mode = mode
        entry = segment.entry
        self.part = partial_path(dest, entry.path)
        self.why = "its partial file was gone before the stream reached it"
        self.fd: int | None = None
        self.digest: Any = hashlib.sha256()
        self.flushed = self.synced = self.written = 0
        self.prefix = -1
        self.stage: mmap.mmap | None = None
        self.staged = 0  # bytes in the staging buffer, which starts at file offset self.written - self.staged
        self.batch: list[tuple[memoryview, _Frame]] = []  # direct: frames' bytes not yet written, up to self.written
        self.batched = 0
        try:
            os.makedirs(os.path.dirname(self.part), exist_ok=True)
            have = os.path.getsize(self.part) if os.path.exists(self.part) else 0
            # Bytes before the stream's start must already be here; beyond them we keep only whole
            # chunks we already had (the plan started the stream at the smallest such prefix).
            self.prefix = max(segment.start, min(have, entry.size) // CHUNK * CHUNK) if have >= segment.start else -1
            self.broken = self.prefix < 0
            if not self.broken:
                self.fd = self._open()
                os.ftruncate(self.fd, self.prefix)
                if self.prefix:
                    self.digest = sha256_file(self.part, self.prefix)[1]
                self.flushed = self.synced = self.written = self.prefix
        except OSError as exc:
            self.fail(f"opening {self.part} failed: {exc}")

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT
        if self.mode == "direct":
            if self.prefix % ALIGN == 0 and hasattr(os, "O_DIRECT"):
                try:
                    return os.open(self.part, flags | os.O_DIRECT, 0o644)
                except OSError:  # EINVAL: this filesystem has no direct I/O
                    pass
            self.mode = "drop"
        return os.open(self.part, flags, 0o644)

    def write(self, data: memoryview, file_offset: int, address: int = -1, frame: _Frame | None = None) -> tuple[int, int] | None:
        """Write what lies beyond the prefix; returns (offset in data, length) to hash, or None.
        `address`: data's offset in its page-aligned buffer (-1: unknown); `frame`: the frame that
        holds data (direct writes may keep it until they are done)."""
        if self.broken or self.fd is None:
            return None
        skip = max(0, self.prefix - file_offset)
        if skip >= len(data):
            return None
        at = file_offset + skip
        view = data[skip:]
        if self.mode == "direct":
            self._write_direct(view, at, address + skip if address >= 0 else -1, frame)
            return skip, len(data) - skip
        while view:
            count = os.pwrite(self.fd, view, at)
            at += count
            view = view[count:]
        self.written = at
        # Start writeback of the newest window; wait for the one before it and drop it from the
        # page cache (the data is hashed from our own buffer, never read back).
        if self.mode == "drop" and at - self.flushed >= DROP_WINDOW:
            _flush_range(self.fd, self.flushed, at - self.flushed, wait=False)
            _flush_range(self.fd, self.synced, self.flushed - self.synced, wait=True)
            self.synced, self.flushed = self.flushed, at
        return skip, len(data) - skip

    def _write_direct(self, view: memoryview, at: int, address: int, frame: _Frame | None) -> None:
        fd = self.fd
        if fd is None:
            raise OSError(f"{self.part} is closed")
        if at != self.written:
            raise OSError(f"direct write at {at}, expected {self.written}")
        while view:
            if not self.staged and at % ALIGN == 0 and address >= 0 and address % ALIGN == 0 and len(view) >= ALIGN:
                whole = len(view) // ALIGN * ALIGN  # straight from the frame
                if frame is None:
                    _pwrite_all(fd, view[:whole], at)
                else:  # held until written with its neighbours in one pwritev
                    self.batch.append((view[:whole], frame.hold()))
                    self.batched += whole
                at, address, view = at + whole, address + whole, view[whole:]
                self.written = at
                if self.batched >= STAGE:
                    self._flush_batch()
                continue
            self._flush_batch()  # no hole before the staged bytes, should the run end here
            if self.stage is None:
                self.stage = mmap.mmap(-1, STAGE)
            take = min(len(view), STAGE - self.staged)
            self.stage[self.staged : self.staged + take] = view[:take]
            self.staged += take
            at += take
            address = address + take if address >= 0 else -1
            view = view[take:]
            self.written = at
            if self.staged == STAGE:
                _pwrite_all(fd, memoryview(self.stage), at - STAGE)
                self.staged = 0

    def _flush_batch(self) -> None:
        """One pwritev for the frames' bytes held so far (one large request keeps a disk busier
        than many small synchronous ones)."""
        if not self.batch:
            return
        batch, at = self.batch, self.written - self.batched
        self.batch, self.batched = [], 0
        views = [view for view, _frame in batch]
        try:
            if self.fd is None:
                return
            done = os.pwritev(self.fd, views, at)
            for view in views:  # a short write: the rest, view by view
                if done >= len(view):
                    done -= len(view)
                else:
                    _pwrite_all(self.fd, view[done:], at + done)
                    done = 0
                at += len(view)
        finally:
            del views
            for _view, frame in batch:
                frame.release()

    def _drop_batch(self) -> None:
        for _view, frame in self.batch:
            frame.release()
        self.batch, self.batched = [], 0

    def fail(self, why: str) -> None:
        """Stop writing this file (what is on disk stays, for a later pass to resume from)."""
        self.why = why
        self.broken = True
        self.abandon()

    def end_write(self) -> None:
        if self.fd is None:
            return
        if self.mode == "direct":
            try:
                self._flush_batch()
            except OSError as exc:
                self.fail(f"writing {self.part} failed: {exc}")
            stage = self.stage
            if self.staged and stage is not None and self.fd is not None and not self.broken:
                # The tail: padded to ALIGN (zeros), then the file cut back to its size. A failure
                # fails the file (its hash, taken from the frames, would otherwise pass).
                padded = -(-self.staged // ALIGN) * ALIGN
                stage[self.staged : padded] = bytes(padded - self.staged)
                try:
                    _pwrite_all(self.fd, memoryview(stage)[:padded], self.written - self.staged)
                    os.ftruncate(self.fd, self.written)
                except OSError as exc:
                    self.fail(f"writing {self.part} failed: {exc}")
            self.staged = 0
            self.stage = None
        elif self.mode == "drop":
            _flush_range(self.fd, self.flushed, self.written - self.flushed, wait=False)

    def finish(self) -> tuple[bool, str]:
        entry = self.segment.entry
        if self.broken or self.fd is None:
            return False, self.why
        os.fdatasync(self.fd)
        if self.mode == "drop":
            with contextlib.suppress(OSError):
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(self.fd)
        self.fd = None
        if self.digest.hexdigest() != entry.sha256:
            os.unlink(self.part)
            return False, "sha256 does not match the manifest; removed, it will be fetched again"
        final = os.path.join(self.dest, entry.path)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(self.part, final)
        return True, ""

    def abandon(self) -> None:
        # Staged or batched bytes not yet written are lost: the partial file ends on the ALIGN grid
        # before them, and a later pass resumes from its whole chunks.
        self._drop_batch()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _pwrite_all(fd: int, view: memoryview, at: int) -> int:
    done = 0
    while done < len(view):
        count = os.pwrite(fd, view[done:], at + done)
        if count <= 0:
            raise OSError(f"pwrite wrote {count} bytes")
        done += count
    return done
