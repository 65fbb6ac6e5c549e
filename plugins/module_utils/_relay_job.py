# Copyright (c) 2026 wideep.gb200 authors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A relay as a job on a tray: detached from the task that started it, its result in a file.

Two modules start relays: model_weights_relay (a member whose place in the chain is known: the
source, or a receiver given the whole plan) and model_weights_mark (a receiver started by the
same call that checked the tray's copy, before the pass is planned: it waits for the plan to
arrive with its upstream's hello, see _relay.await_plan). Both run the relay through here.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from ._relay import CONGESTION, Relay, RelayError, await_plan, listen, parse_address, transport_problems
from ._weights import FileEntry, layout, mark_received, parse_manifest, write_json_atomic

PROCESS_NAME = b"wideep-relay"


def name_process(name: bytes = PROCESS_NAME) -> None:
    """The command line of a pipelined module is only `python3`: give the relay a name for ps/pkill."""
    try:
        with open("/proc/self/comm", "wb") as handle:
            handle.write(name)
    except OSError:
        pass


def detach(job_path: str, work: Callable[[], dict[str, Any]], keep: tuple[int, ...] = ()) -> int:
    """Run work() in a daemon of its own session (double fork, stdio on /dev/null, inherited
    descriptors closed except `keep`, so the task's SSH channel closes now); its result, or the
    error that ended it, lands in job_path. Returns the daemon's pid once it runs."""
    write_json_atomic(job_path, {"started": 1, "finished": 0})
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child:
        os.close(ready_w)
        pid = os.read(ready_r, 32)
        os.close(ready_r)
        os.waitpid(child, 0)
        return int(pid or b"0")
    os.setsid()
    if os.fork():
        os._exit(0)
    try:
        os.close(ready_r)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(ready_w, str(os.getpid()).encode())
        low = 3
        for fd in sorted(keep):
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 65536)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        name_process()
        try:
            result = work()
        except Exception as exc:  # pylint: disable=broad-exception-caught  # reported to whoever waits
            result = {"failed": True, "msg": f"relay failed: {exc}", "state": "incomplete"}
        write_json_atomic(job_path, {**result, "started": 1, "finished": 1})
    finally:
        os._exit(0)


def finished_job(data: Any) -> dict[str, Any] | None:
    """A job file's content once its relay finished (as async_status reports it), else None."""
    if not isinstance(data, dict) or (data.get("started") and not data.get("finished")):
        return None
    return data | {"finished": data.get("finished", 1)}


def run_and_mark(
    relay: Relay,
    entries: list[FileEntry],
    dest: str | None,
    mark_complete: bool,
    server: socket.socket | None = None,
    first: tuple[socket.socket, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the relay to its end; a receiver that got everything checks its copy by the stamps and
    writes .wideep/COMPLETE (mark_complete). A relay that itself failed returns failed=True."""
    try:
        result = relay.run(server, first)
    except (OSError, RelayError) as exc:
        return {"failed": True, "msg": f"relay {relay.index} failed: {exc}", "holds_all": False, "marked": False, **relay.result()}
    return _marked(result, entries, dest, mark_complete and relay.index != 0)


def _marked(result: dict[str, Any], entries: list[FileEntry], dest: str | None, mark_complete: bool) -> dict[str, Any]:
    holds_all = marked = False
    if mark_complete and dest:
        try:
            holds_all, marked = mark_received(dest, entries, result)
        except OSError as exc:  # the files are published; the next pass's check marks them
            result["failed"] = {**result["failed"], ".wideep/COMPLETE": f"marking the copy failed: {exc}"}
    return {"changed": bool(result["published"]) or marked, "holds_all": holds_all, "marked": marked, **result}


def receive_planned(server: socket.socket, run_id: str, entries: list[FileEntry], needs: set[str], dest: str, wait: float, **transport: Any) -> dict[str, Any]:
    """A receiver listening before its pass was planned: the first upstream of run `run_id` brings
    the plan (this tray's index, the chain, the stream's start offsets); then it runs as any
    receiver and marks its copy. Nothing arriving within `wait` seconds ends it, incomplete."""
    try:
        got = await_plan(server, run_id, wait)
    except OSError as exc:
        server.close()
        return {"failed": True, "msg": f"waiting for the plan failed: {exc}", "state": "incomplete", "holds_all": False, "marked": False}
    if got is None:
        server.close()
        return {
            "failed": True,
            "msg": f"no upstream brought the plan of run {run_id} within {wait:.0f} s (the pass was refused, or its source never started)",
            "state": "incomplete",
            "holds_all": False,
            "marked": False,
        }
    conn, hello = got
    plan = hello["plan"]
    starts = {str(k): int(v) for k, v in plan["starts"].items()}
    relay = Relay(
        run_id=run_id,
        index=int(plan["index"]),
        chain=[parse_address(str(member)) for member in plan["chain"]],
        segments=layout(entries, starts),
        needs=needs,
        dest=dest,
        starts=starts,
        **transport,
    )
    return run_and_mark(relay, entries, dest, True, server, (conn, hello))


def start_receiver(spec: dict[str, Any], dest: str, entries: list[FileEntry], lacking: set[str]) -> dict[str, Any]:
    """Listen now (a port already taken fails, named), then wait for the plan in a daemon: what
    model_weights_mark's `receive` starts. RelayError says why it could not start."""
    problems = transport_problems(spec["lanes"], spec["block_bytes"], spec["socket_buffer"], congestion=spec["congestion"])
    if problems:
        raise RelayError("; ".join(problems))
    try:
        server = listen(spec["port"], socket_buffer=spec["socket_buffer"])
    except OSError as exc:
        raise RelayError(f"cannot listen on port {spec['port']} to receive {dest}: {exc.strerror or exc}; stop what holds it or choose another port") from exc
    transport = {
        "stall_timeout": spec["stall_timeout"],
        "connect_timeout": spec["connect_timeout"],
        "idle_timeout": spec["idle_timeout"],
        "progress_path": spec["progress_path"],
        "lanes": spec["lanes"],
        "block": spec["block_bytes"],
        "socket_buffer": spec["socket_buffer"],
        "page_cache": spec["page_cache"],
        "congestion": spec["congestion"],
    }
    wait = spec["idle_timeout"] + 2 * spec["connect_timeout"]

    def work() -> dict[str, Any]:
        return receive_planned(server, spec["run_id"], entries, lacking, dest, wait, **transport)

    try:
        pid = detach(spec["job_path"], work, keep=(server.fileno(),))
    except OSError as exc:
        raise RelayError(f"starting the receiving relay failed: {exc}") from exc
    finally:
        server.close()  # the daemon holds its own copy
    return {"pid": pid, "job_path": spec["job_path"], "port": spec["port"]}


def boot_receiver(doc: dict[str, Any]) -> dict[str, Any]:
    """model_weights_mark's action on a tray that holds none of the files: start the receiver
    without a module run (its arguments were validated by the module's spec on the controller).
    doc: {"dest", "manifest", "lacking", "receive"}."""
    try:
        entries = parse_manifest({"files": doc["manifest"]})
        receive = expand_paths(doc["receive"], ("job_path", "progress_path"))
        return {"receiver": start_receiver(receive, doc["dest"], entries, set(doc["lacking"]))}
    except (RelayError, ValueError, KeyError, TypeError) as exc:
        return {"failed": True, "msg": str(exc)}


# A relay's transport: the same options, bounds and defaults for a member started by
# model_weights_relay and for a receiver started by model_weights_mark's `receive`.
TRANSPORT_OPTIONS: dict[str, Any] = {
    "progress_path": {"type": "path"},
    "stall_timeout": {"type": "float", "default": 30},
    "connect_timeout": {"type": "float", "default": 120},
    "idle_timeout": {"type": "float", "default": 300},
    "lanes": {"type": "int", "default": 2},
    "block_bytes": {"type": "int", "default": 1048576},
    "socket_buffer": {"type": "int", "default": 0},
    "page_cache": {"type": "str", "default": "direct", "choices": ["direct", "drop", "keep"]},
    "congestion": {"type": "str", "default": CONGESTION},
}

# wideep.gb200.model_weights_relay's options (its module and its action plugin share them).
RELAY_ARGUMENT_SPEC: dict[str, Any] = {
    "run_id": {"type": "str", "required": True},
    "index": {"type": "int", "required": True},
    "chain": {"type": "list", "elements": "str", "required": True},
    "manifest": {"type": "list", "elements": "dict", "required": True},
    "starts": {"type": "dict", "required": True},
    "needs": {"type": "list", "elements": "str", "default": []},
    "dest": {"type": "path"},
    "source_dir": {"type": "path"},
    "fanout": {"type": "bool", "default": False},
    "rate_limit": {"type": "int", "default": 0},
    "mark_complete": {"type": "bool", "default": False},
    "job_path": {"type": "path"},
    **TRANSPORT_OPTIONS,
}
RELAY_REQUIRED_IF: list[Any] = [("index", 0, ["source_dir"])]


def relay_work(params: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """model_weights_relay's member, ready to run (RelayError says what is wrong with params)."""
    try:
        entries = parse_manifest({"files": params["manifest"]})
        chain = [parse_address(member) for member in params["chain"]]
        starts = {str(k): int(v) for k, v in params["starts"].items()}
    except ValueError as exc:
        raise RelayError(f"bad relay spec: {exc}") from exc
    if params["index"] != 0 and not params["dest"]:
        raise RelayError("a receiving member needs dest")
    problems = transport_problems(params["lanes"], params["block_bytes"], params["socket_buffer"], congestion=params["congestion"])
    if problems:
        raise RelayError("; ".join(problems))
    relay = Relay(
        run_id=params["run_id"],
        index=params["index"],
        chain=chain,
        segments=layout(entries, starts),
        needs=set(params["needs"]),
        dest=params["dest"],
        source_dir=params["source_dir"],
        fanout=params["fanout"],
        stall_timeout=params["stall_timeout"],
        connect_timeout=params["connect_timeout"],
        idle_timeout=params["idle_timeout"],
        rate_limit=params["rate_limit"],
        progress_path=params["progress_path"],
        lanes=params["lanes"],
        block=params["block_bytes"],
        socket_buffer=params["socket_buffer"],
        page_cache=params["page_cache"],
        congestion=params["congestion"],
        # downstream hellos carry the plan: a receiver started by model_weights_mark learns it so
        starts=starts,
    )

    def work() -> dict[str, Any]:
        return run_and_mark(relay, entries, params["dest"], params["mark_complete"])

    return work


def expand_paths(values: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The options of type path as a module expands them, on the tray: ~ and $VARS."""
    return values | {key: os.path.expanduser(os.path.expandvars(values[key])) for key in keys if isinstance(values.get(key), str)}


def boot_relay(params: dict[str, Any]) -> dict[str, Any]:
    """model_weights_relay's action with job_path: start the member detached without a module run
    (params validated by the module's spec on the controller, paths as given); the module's answer."""
    params = expand_paths(params, ("dest", "source_dir", "progress_path", "job_path"))
    try:
        pid = detach(params["job_path"], relay_work(params))
    except RelayError as exc:
        return {"failed": True, "msg": str(exc)}
    except OSError as exc:
        return {"failed": True, "msg": f"starting the relay failed: {exc}"}
    return {"changed": False, "pid": pid, "job_path": params["job_path"]}


# wideep.gb200.model_weights_mark's options: `receive` starts a receiving relay (what the module
# runs); the module and its action plugin (which validates a task's arguments with it before it
# answers from a shell read) share them.
RECEIVE_OPTIONS: dict[str, Any] = {
    "run_id": {"type": "str", "required": True},
    "port": {"type": "int", "required": True},
    "job_path": {"type": "path", "required": True},
    **TRANSPORT_OPTIONS,
}

MARK_ARGUMENT_SPEC: dict[str, Any] = {
    "dest": {"type": "path", "required": True},
    "manifest": {"type": "list", "elements": "dict", "required": True},
    "full_verify": {"type": "bool", "default": False},
    "repair": {"type": "bool", "default": True},
    "mark_complete": {"type": "bool", "default": True},
    "receive": {"type": "dict", "options": RECEIVE_OPTIONS},
}
