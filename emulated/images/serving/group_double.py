"""TEST DOUBLE of SGLang's multi-node process group (torch.distributed + NCCL) for the emulated trays.

A real SGLang worker spanning N trays is N processes, one per tray (`--node-rank 0..N-1`), joined
by torch.distributed at `--dist-init-addr` into one NCCL group. When one member dies the others
cannot go on: NCCL aborts the communicator (or its watchdog times out) and they die too, so the
worker can only come back as a unit. Dynamo's mocker, which stands in for the engine here, has no
multi-node notion: it simulates the whole worker from rank 0. This script gives the emulated
worker the group's behaviour, and nothing more:

  rank 0   group_double.py --rank 0 --nnodes N --addr HOST:PORT [--timeout S] -- ENGINE ARGV...
           listens on PORT, waits for ranks 1..N-1 (rendezvous; gives up after --timeout like
           torch's store), then starts ENGINE ARGV (the mocker) as its child. If a member leaves
           (connection closed or no heartbeat for --heartbeat-timeout) it stops the child and
           exits 1; if the child exits, it closes the group and exits with the child's status.
  rank k   group_double.py --rank k --nnodes N --addr HOST:PORT [--timeout S]
           connects to rank 0 (retrying until --timeout), joins, and lives as long as the group:
           when rank 0 goes away it exits 1.

Heartbeats every second both ways, so a member whose tray vanished (no FIN, no RST) is noticed
within --heartbeat-timeout seconds, as NCCL's watchdog would. SIGTERM (docker stop) ends a member
cleanly with status 0. The messages name the failure the way the real stack's logs do ("NCCL
error", "timed out", "rendezvous"), so the triage table matches them as it matches the real ones.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time

HEARTBEAT_S = 1.0


def say(text: str) -> None:
    sys.stdout.write(f"[group-double] {text}\n")
    sys.stdout.flush()


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    engine: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, engine = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="group_double.py")
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--nnodes", type=int, required=True)
    parser.add_argument("--addr", required=True, help="rank 0's HOST:PORT (SGLang's --dist-init-addr)")
    parser.add_argument("--timeout", type=float, default=600.0, help="rendezvous timeout, seconds")
    # A killed or stopped member closes its sockets and is noticed at once; the timeout is for a
    # member that hangs. 30 s, not NCCL's minutes, yet long enough that a loaded machine running
    # 18 trays on two cores does not take a stall for a death (5 s did, on a rack's first run).
    parser.add_argument("--heartbeat-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.rank == 0 and not engine:
        parser.error("rank 0 needs the engine's command after --")
    if args.rank != 0 and engine:
        parser.error("only rank 0 runs the engine")
    if not 0 <= args.rank < args.nnodes:
        parser.error(f"--rank {args.rank} is outside 0..{args.nnodes - 1}")
    return args, engine


class StopRequestedError(Exception):
    """SIGTERM arrived (docker stop)."""


def _on_term(_signum: int, _frame: object) -> None:
    raise StopRequestedError()


class Peer:
    def __init__(self, sock: socket.socket, rank: int) -> None:
        self.sock = sock
        self.rank = rank
        self.buf = b""
        self.seen = time.monotonic()

    def read(self) -> bool:
        """Read what arrived; False when the peer closed."""
        try:
            data = self.sock.recv(4096)
        except OSError:
            return False
        if not data:
            return False
        self.buf = (self.buf + data)[-4096:]
        self.seen = time.monotonic()
        return True

    def beat(self) -> bool:
        try:
            self.sock.sendall(b"hb\n")
            return True
        except OSError:
            return False


def _host_port(addr: str) -> tuple[str, int]:
    host, port = addr.rsplit(":", 1)
    return host.strip("[]"), int(port)


def rank0(args: argparse.Namespace, engine: list[str]) -> int:
    port = _host_port(args.addr)[1]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(64)
    say(f"rank 0/{args.nnodes}: rendezvous at {args.addr}, waiting for ranks 1..{args.nnodes - 1}")
    peers: dict[int, Peer] = {}
    deadline = time.monotonic() + args.timeout
    while len(peers) < args.nnodes - 1:
        left = deadline - time.monotonic()
        if left <= 0:
            missing = sorted(set(range(1, args.nnodes)) - set(peers))
            say(f"rendezvous timed out after {args.timeout:.0f} s: ranks {missing} never joined (torch.distributed store timeout)")
            return 1
        ready = select.select([server], [], [], min(left, 1.0))[0]
        if not ready:
            continue
        conn, where = server.accept()
        conn.settimeout(5.0)
        try:
            hello = conn.recv(64).decode(errors="replace").split()
            rank = int(hello[1]) if len(hello) >= 2 and hello[0] == "rank" else -1
        except (OSError, ValueError):
            rank = -1
        if not 1 <= rank < args.nnodes:
            conn.close()
            continue
        conn.settimeout(None)
        if rank in peers:
            peers[rank].sock.close()
        peers[rank] = Peer(conn, rank)
        say(f"rank {rank} joined from {where[0]}")
    for peer in peers.values():
        peer.sock.sendall(b"formed\n")
    say(f"all {args.nnodes} ranks joined: process group formed; starting the engine")
    child = subprocess.Popen(engine)
    try:
        return _watch(args, child, peers, server)
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        for peer in peers.values():
            peer.sock.close()


def _watch(args: argparse.Namespace, child: subprocess.Popen[bytes], peers: dict[int, Peer], server: socket.socket) -> int:
    last_beat = 0.0
    while True:
        code = child.poll()
        if code is not None:
            say(f"engine exited with status {code}: closing the process group")
            return code
        now = time.monotonic()
        if now - last_beat >= HEARTBEAT_S:
            last_beat = now
            for peer in peers.values():
                if not peer.beat():
                    return _lost(peer, "connection reset")
        socks = [p.sock for p in peers.values()]
        ready = select.select([*socks, server], [], [], 0.5)[0]
        for sock in ready:
            if sock is server:
                late = server.accept()[0]  # a member of an older or newer incarnation: not this group
                late.close()
                continue
            peer = next(p for p in peers.values() if p.sock is sock)
            if not peer.read():
                return _lost(peer, "connection closed")
        for peer in peers.values():
            if time.monotonic() - peer.seen > args.heartbeat_timeout:
                return _lost(peer, f"no heartbeat for {args.heartbeat_timeout:.0f} s (NCCL watchdog timeout)")


def _lost(peer: Peer, why: str) -> int:
    what = "stopping the engine" if peer.rank != 0 else "this rank exits"
    say(f"NCCL error: rank {peer.rank} left the process group ({why}); communicator aborted, {what}")
    return 1


def member(args: argparse.Namespace) -> int:
    host, port = _host_port(args.addr)
    deadline = time.monotonic() + args.timeout
    say(f"rank {args.rank}/{args.nnodes}: joining the process group at {args.addr}")
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=2.0)
            sock.sendall(f"rank {args.rank}\n".encode())
            sock.settimeout(None)
            peer = Peer(sock, 0)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                say(f"rendezvous timed out after {args.timeout:.0f} s: cannot reach rank 0 at {args.addr} ({exc})")
                return 1
            time.sleep(1.0)
    formed = False
    last_beat = 0.0
    while True:
        now = time.monotonic()
        if now - last_beat >= HEARTBEAT_S:
            last_beat = now
            if formed and not peer.beat():
                return _lost(peer, "connection reset")
        ready = select.select([sock], [], [], 0.5)[0]
        if ready:
            if not peer.read():
                if not formed:
                    say("rank 0 turned this member away (a group is already running); retrying")
                    sock.close()
                    return member(args) if time.monotonic() < deadline else 1
                return _lost(peer, "connection closed")
            if not formed and b"formed" in peer.buf:
                formed = True
                say(f"process group formed (rank {args.rank} of {args.nnodes})")
        if formed and time.monotonic() - peer.seen > args.heartbeat_timeout:
            return _lost(peer, f"no heartbeat for {args.heartbeat_timeout:.0f} s (NCCL watchdog timeout)")


def main() -> int:
    args, engine = parse(sys.argv[1:])
    signal.signal(signal.SIGTERM, _on_term)
    try:
        return rank0(args, engine) if args.rank == 0 else member(args)
    except StopRequestedError:
        say("SIGTERM: leaving the process group")
        return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
