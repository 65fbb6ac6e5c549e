"""One hop over NIXL (UCX underneath), for `make bench-relay` to compare with the TCP relay.

    NIXL_PYTHON=/tmp/nixl-venv/bin/python make bench-relay     (a venv with `pip install nixl`)
    /tmp/nixl-venv/bin/python benchmarks/nixl_hop.py SOURCE_FILE [BYTES]

Two processes, two NIXL agents (UCX backend; UCX_TLS defaults to tcp so that it uses the same
path the relay does, not shared memory). The target registers a host buffer; the initiator
registers its own, and for each block: reads the next block of SOURCE_FILE into it (file ->
host memory), then WRITEs it into the target's buffer (host memory -> peer) and waits for
completion. Prints one JSON line per case: memory->peer only, and file->memory->peer. Nothing
is hashed or written on the target (the relay does both): these are upper bounds for a NIXL
transport, not a drop-in relay.

Run it with a Python that has nixl (not this repository's venv: nixl pulls torch and CUDA
wheels, ~3 GB).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time

BLOCK = 64 << 20


def _target(conn: object) -> None:
    import numpy as np
    from nixl._api import nixl_agent, nixl_agent_config

    agent = nixl_agent("target", nixl_agent_config(backends=["UCX"]))
    buf = np.zeros(BLOCK, dtype=np.uint8)
    agent.register_memory([(buf.ctypes.data, BLOCK, 0, "")], "DRAM")
    conn.send((agent.get_agent_metadata(), buf.ctypes.data))  # type: ignore[attr-defined]
    conn.recv()  # type: ignore[attr-defined]  # the initiator is done


def main() -> None:
    source = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else os.path.getsize(source)
    os.environ.setdefault("UCX_TLS", "tcp")
    import numpy as np
    from nixl._api import nixl_agent, nixl_agent_config

    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_target, args=(there,))
    proc.start()
    meta, remote_addr = here.recv()
    agent = nixl_agent("initiator", nixl_agent_config(backends=["UCX"]))
    buf = np.zeros(BLOCK, dtype=np.uint8)
    agent.register_memory([(buf.ctypes.data, BLOCK, 0, "")], "DRAM")
    name = agent.add_remote_agent(meta)
    local = agent.get_xfer_descs([(buf.ctypes.data, BLOCK, 0)], "DRAM")
    remote = agent.get_xfer_descs([(remote_addr, BLOCK, 0)], "DRAM")
    handle = None
    for _attempt in range(100):  # the connection comes up asynchronously
        try:
            handle = agent.initialize_xfer("WRITE", local, remote, name)
            break
        except Exception:  # nixl raises its own types
            time.sleep(0.1)
    if handle is None:
        raise SystemExit("nixl: could not create a transfer to the target")

    def write() -> None:
        state = agent.transfer(handle)
        while state == "PROC":
            state = agent.check_xfer_state(handle)
        if state != "DONE":
            raise SystemExit(f"nixl transfer failed: {state}")

    write()  # warm-up
    rows = []
    for case, from_file in (("nixl-mem-to-peer", False), ("nixl-file-to-mem-to-peer", True)):
        fd = os.open(source, os.O_RDONLY)
        cpu0 = os.times()
        began = time.perf_counter()
        moved = 0
        view = memoryview(buf)
        while moved < total:
            if from_file:
                got = os.preadv(fd, [view], moved % max(1, os.path.getsize(source) - BLOCK))
                if got <= 0:
                    break
            write()
            moved += BLOCK
        seconds = time.perf_counter() - began
        cpu1 = os.times()
        os.close(fd)
        rows.append(
            {
                "case": case,
                "bytes": moved,
                "seconds": round(seconds, 3),
                "gb_per_s": round(moved / seconds / 1e9, 3),
                "initiator_cpu_s_per_gb": round((cpu1.user - cpu0.user + cpu1.system - cpu0.system) / (moved / 1e9), 3),
                "ucx_tls": os.environ["UCX_TLS"],
            }
        )
    here.send("done")
    proc.join(30)
    for row in rows:
        print(json.dumps(row))  # noqa: T201


if __name__ == "__main__":
    main()
