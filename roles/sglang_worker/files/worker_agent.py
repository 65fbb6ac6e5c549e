# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""wideep.gb200 worker restart agent (gb200_worker_restart: {policy: on-failure}).

One agent per tray of a multi-tray worker, in a container of its own, watching its rank's
container through the Docker socket. Docker's restart policies restart one container; a
multi-tray worker is one process group and can only come back whole. The agents of a worker
coordinate through the deployment's etcd (the v3 JSON gateway), under one key:

  /wideep/<prefix>/workers/<worker>/restart = {"generation": g, "attempts": a, "last": unix s,
                                               "reason": "...", "exhausted": bool}

- An agent that sees its rank's container exit with a non-zero status (a crash, a kill, the group
  dying; not `docker stop`, which ends a rank with 0, nor a stop the agent made itself) waits
  back-off (backoff_s doubled per attempt, capped at backoff_max_s) and then bumps the generation
  with a compare-and-swap, if attempts < retries. Several agents seeing the same failure bump it
  once: only the agent whose generation is still the current one wins.
- Every agent that sees a generation newer than its own stops and starts its own rank's container;
  the ranks rendezvous again by themselves (rank 0 waits for the others).
- Retries exhausted: the worker stays down, the key says so, the log says so once; `heal` (or
  serve) brings it back and resets the count.
- etcd unreachable: the agent says so, keeps watching and retries every interval.

One log line per decision. Python standard library only (the serving image's python3).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from typing import Any

DOCKER_SOCKET = "/var/run/docker.sock"


# ------------------------------------------------------------------ decisions (pure)


@dataclass(frozen=True)
class Policy:
    retries: int
    backoff_s: float
    backoff_max_s: float


@dataclass(frozen=True)
class Shared:
    """The worker's restart record in etcd."""

    generation: int = 0
    attempts: int = 0
    last: float = 0.0
    reason: str = ""
    exhausted: bool = False

    def to_json(self) -> str:
        return json.dumps({"generation": self.generation, "attempts": self.attempts, "last": self.last, "reason": self.reason, "exhausted": self.exhausted})

    @staticmethod
    def from_json(text: str | None) -> Shared:
        if not text:
            return Shared()
        data = json.loads(text)
        return Shared(
            int(data.get("generation", 0)),
            int(data.get("attempts", 0)),
            float(data.get("last", 0.0)),
            str(data.get("reason", "")),
            bool(data.get("exhausted", False)),
        )


@dataclass(frozen=True)
class Observed:
    """This rank's container as Docker describes it (None fields: the container is missing)."""

    exists: bool
    running: bool
    status: str  # running, exited, created, restarting, ...
    exit_code: int
    finished_at: str


def backoff(policy: Policy, attempts: int) -> float:
    """Seconds to wait before restart number attempts + 1: doubling, capped."""
    return float(min(policy.backoff_s * (2**attempts), policy.backoff_max_s))


def is_failure(observed: Observed, handled_finish: str | None) -> bool:
    """A failure is a new non-zero exit: not a clean stop (exit 0: docker stop, an operator), not
    one already handled (the same FinishedAt), not a missing container (teardown removed it)."""
    return observed.exists and not observed.running and observed.status == "exited" and observed.exit_code != 0 and observed.finished_at != handled_finish


@dataclass(frozen=True)
class Decision:
    action: str  # follow, wait, bump, exhausted, none
    why: str
    new: Shared | None = None  # for bump / exhausted: the record to compare-and-swap in


def decide(shared: Shared, mine: int, failed_since: float | None, now: float, policy: Policy) -> Decision:
    """What this agent does now. mine: the generation its container runs; failed_since: when it
    first saw its rank's failure (None: no unhandled failure)."""
    if shared.generation > mine:
        return Decision("follow", f"generation {shared.generation} > {mine}: restarting this rank with the others")
    if failed_since is None:
        return Decision("none", "running, or stopped on purpose")
    if shared.exhausted or shared.attempts >= policy.retries:
        new = replace(shared, exhausted=True, reason=shared.reason if shared.exhausted else f"retries exhausted ({shared.attempts}/{policy.retries})")
        return Decision("exhausted", f"retries exhausted ({shared.attempts}/{policy.retries}): the worker stays down; run wideep.gb200.heal", new)
    wait = backoff(policy, shared.attempts)
    if now < failed_since + wait:
        return Decision("wait", f"back-off {wait:.0f} s before restart {shared.attempts + 1}/{policy.retries} ({failed_since + wait - now:.0f} s left)")
    new = Shared(shared.generation + 1, shared.attempts + 1, now, "", False)
    return Decision("bump", f"restart {new.attempts}/{policy.retries} of the whole worker: generation {new.generation}", new)


# ------------------------------------------------------------------ etcd (v3 JSON gateway)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Etcd:
    def __init__(self, endpoint: str, key: str, timeout: float = 5.0) -> None:
        self.endpoint, self.key, self.timeout = endpoint.rstrip("/"), key, timeout

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # the plan's etcd endpoint (http)
            data: dict[str, Any] = json.load(response)
            return data

    def read(self) -> tuple[Shared, int]:
        """The record and its mod revision (0: absent)."""
        kvs = self._post("/v3/kv/range", {"key": _b64(self.key)}).get("kvs") or []
        if not kvs:
            return Shared(), 0
        return Shared.from_json(base64.b64decode(kvs[0].get("value", "")).decode()), int(kvs[0].get("mod_revision", 0))

    def swap(self, new: Shared, revision: int) -> bool:
        """Write new only if nobody wrote since revision (compare-and-swap)."""
        body = {
            "compare": [{"key": _b64(self.key), "result": "EQUAL", "target": "MOD", "mod_revision": str(revision)}],
            "success": [{"request_put": {"key": _b64(self.key), "value": _b64(new.to_json())}}],
        }
        return bool(self._post("/v3/kv/txn", body).get("succeeded"))


# ------------------------------------------------------------------ Docker (Engine API on the socket)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


class Docker:
    def __init__(self, path: str = DOCKER_SOCKET, timeout: float = 120.0) -> None:
        self.path, self.timeout = path, timeout

    def _call(self, method: str, url: str) -> tuple[int, bytes]:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request(method, url)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def inspect(self, name: str) -> Observed:
        status, body = self._call("GET", f"/containers/{name}/json")
        if status == 404:
            return Observed(False, False, "missing", 0, "")
        if status != 200:
            raise OSError(f"docker inspect {name}: HTTP {status}: {body[:200]!r}")
        state = json.loads(body)["State"]
        return Observed(True, bool(state.get("Running")), str(state.get("Status")), int(state.get("ExitCode", 0)), str(state.get("FinishedAt", "")))

    def restart(self, name: str, stop_timeout: int) -> None:
        """Stop (if running), then start: what a new generation asks of every rank."""
        for action in (f"/containers/{name}/stop?t={stop_timeout}", f"/containers/{name}/start"):
            status, body = self._call("POST", action)
            if status not in (204, 304):
                raise OSError(f"docker {action}: HTTP {status}: {body[:200]!r}")


# ------------------------------------------------------------------ the loop


def say(worker: str, rank: int, text: str) -> None:
    sys.stdout.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} [worker-agent {worker} rank {rank}] {text}\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    policy = Policy(args.retries, args.backoff, args.backoff_max)
    etcd, docker = Etcd(args.etcd, args.key), Docker()

    def log(text: str) -> None:
        say(args.worker, args.rank, text)

    mine: int | None = None
    handled: str | None = None
    failed_since: float | None = None
    last_said = ""
    log(
        f"watching {args.container}: on-failure, {policy.retries} retries, back-off {policy.backoff_s:.0f} s "
        f"doubling to {policy.backoff_max_s:.0f} s; etcd {args.etcd} key {args.key}"
    )
    while True:
        time.sleep(args.interval)
        try:
            observed = docker.inspect(args.container)
        except OSError as exc:
            line = f"docker unreachable ({exc}); retrying"
            if line != last_said:
                log(line)
                last_said = line
            continue
        try:
            shared, revision = etcd.read()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            line = f"etcd unreachable at {args.etcd} ({exc}); retrying every {args.interval:.0f} s"
            if line != last_said:
                log(line)
                last_said = line
            continue
        if mine is None:
            mine = shared.generation  # adopt what runs now; act only on what happens next
            handled = observed.finished_at if not observed.running else None
            log(f"generation {mine}, {shared.attempts} restart(s) so far; {args.container} is {observed.status}")
        if observed.running and failed_since is not None:
            log(f"{args.container} runs again (started by someone else: serve, heal or an operator)")
            failed_since = None
        if is_failure(observed, handled) and failed_since is None:
            failed_since = time.time()
            log(f"{args.container} exited with status {observed.exit_code} at {observed.finished_at}: a failure of the worker")
        decision = decide(shared, mine, failed_since, time.time(), policy)
        if decision.action == "follow":
            log(decision.why)
            try:
                docker.restart(args.container, args.stop_timeout)
            except OSError as exc:
                log(f"restart of {args.container} failed ({exc}); retrying")
                continue
            mine, failed_since = shared.generation, None
            handled = docker.inspect(args.container).finished_at
            log(f"{args.container} started again (generation {mine})")
        elif decision.action in ("bump", "exhausted") and decision.new is not None:
            if decision.action == "exhausted" and shared.exhausted:
                line = decision.why
            else:
                try:
                    won = etcd.swap(decision.new, revision)
                except (OSError, urllib.error.URLError, ValueError) as exc:
                    log(f"etcd unreachable at {args.etcd} ({exc}); the decision waits")
                    continue
                line = decision.why if won else "another rank's agent decided first; following it"
            if line != last_said:
                log(line)
                last_said = line
        elif decision.action == "wait" and decision.why.split(" (")[0] != last_said.split(" (")[0]:
            log(decision.why)
            last_said = decision.why


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="worker_agent.py", description="Restart a multi-tray worker as a unit (gb200_worker_restart)")
    parser.add_argument("--etcd", required=True, help="etcd client URL (the plan's etcd_endpoints)")
    parser.add_argument("--key", required=True, help="the worker's restart record, e.g. /wideep/wideep/workers/prefill_0/restart")
    parser.add_argument("--worker", required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--container", required=True, help="this rank's container")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--backoff", type=float, default=10.0)
    parser.add_argument("--backoff-max", type=float, default=300.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--stop-timeout", type=int, default=30)
    return parser.parse_args(argv)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return run(parse(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
