"""Cold against warm bring-up on the emulated cluster: the serving image and the kernel caches staged once.

    make bench-warm-start        (writes build/bench/warm_start.json and prints a table)

On the emulated cluster (`make cluster-up`; the weights may already be in place):
  cold: the workers are torn down, the serving image is removed from every tray but tray0 (the
        one that obtains it) and every tray's kernel caches are wiped; then `wideep.gb200.site`
        runs to the smoke gate: the image goes down the chain, each compile configuration is
        compiled once (the emulated image's TEST DOUBLE of sglang.compile_deep_gemm), fanned out,
        and the workers start.
  warm: `wideep.gb200.teardown`, then `wideep.gb200.site` again, to the smoke gate.
Compiles per tray are counted from each tray's compile-log.jsonl. seconds = the whole playbook.
The image's move is reported from the relays' own results (bytes and seconds per receiver; the
links are not shaped here: `make bench-weights` measures the chain against W/B on shaped links).
Mocker figures measure the plumbing, not GB200 performance.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / "build" / "emulated" / "cluster.json"
OUT = ROOT / "build" / "bench" / "warm_start.json"
CACHE_ROOT = "/var/lib/wideep/kernel-cache"


def say(text: str = "", flush: bool = True) -> None:
    sys.stdout.write(text + "\n")
    if flush:
        sys.stdout.flush()


def sh(*cmd: str, check: bool = True) -> str:
    return subprocess.run(list(cmd), check=check, text=True, capture_output=True, stdin=subprocess.DEVNULL).stdout


def playbook(name: str) -> tuple[float, str]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "pythonpath"), ANSIBLE_NOCOLOR="1")
    inventories = ["-i", str(ROOT / "build" / "emulated" / "hosts.yml"), "-i", str(ROOT / "inventories" / "emulated")]
    command = [str(Path(sys.executable).parent / "ansible-playbook"), f"wideep.gb200.{name}", *inventories]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return seconds, proc.stdout


def in_tray(container: str, script: str) -> str:
    return sh("docker", "exec", container, "sh", "-c", script)


def compiles(container: str) -> int:
    return len([line for line in in_tray(container, f"cat {CACHE_ROOT}/compile-log.jsonl 2>/dev/null || true").splitlines() if line.strip()])


def image_chain(output: str) -> dict[str, Any]:
    """The image pass's per-receiver results, from the broadcast's report lines."""
    section = output.split("PLAY [The serving image", 1)[-1].split("PLAY [Model weights", 1)[0]
    pattern = re.compile(r"ok: \[(\w+)\] => \n\s+msg: '?(\d+) file\(s\) published, (\d+) bytes received in ([\d.]+) s")
    rows = [{"tray": m.group(1), "bytes": int(m.group(3)), "seconds": float(m.group(4))} for m in pattern.finditer(section)]
    rows = [r for r in rows if r["bytes"]]
    if not rows:
        return {}
    first, last = min(r["seconds"] for r in rows), max(r["seconds"] for r in rows)
    return {
        "receivers": len(rows),
        "bytes": max(r["bytes"] for r in rows),
        "first_seconds": first,
        "last_seconds": last,
        "last_over_first": round(last / first, 3) if first else None,
        "mb_per_s": round(max(r["bytes"] for r in rows) / last / 1e6, 1) if last else None,
    }


def main() -> None:
    state = json.loads(STATE.read_text())
    trays = {t["host"]: t["container"] for t in state["trays"]}
    image = state["images"]["serving"]["name"]
    source = next(t["host"] for t in state["trays"] if t["group"] == "dynamo_head")
    load = os.getloadavg()
    say(f"warm-start bench on {len(trays)} emulated trays; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)

    playbook("teardown")
    for host, container in trays.items():
        in_tray(container, f"rm -rf {CACHE_ROOT} /var/lib/wideep/images")
        if host != source:
            in_tray(container, f"docker image rm --force {image} >/dev/null 2>&1 || true")
    cold_seconds, cold_out = playbook("site")
    cold_compiles = {h: compiles(c) for h, c in trays.items()}
    ids = {h: in_tray(c, f"docker image inspect --format '{{{{.Id}}}}' {image}").strip() for h, c in trays.items()}

    playbook("teardown")
    warm_seconds, warm_out = playbook("site")
    warm_compiles = {h: compiles(c) - cold_compiles[h] for h, c in trays.items()}

    result = {
        "cold_seconds": round(cold_seconds, 1),
        "warm_seconds": round(warm_seconds, 1),
        "compiles": cold_compiles,
        "warm_compiles": warm_compiles,
        "image_ids_equal": len(set(ids.values())) == 1,
        "trays": len(trays),
        "image_chain": image_chain(cold_out),
        "smoke_passed": {"cold": "Smoke gate" in cold_out, "warm": "Smoke gate" in warm_out},
        "load_average": [round(x, 2) for x in load],
        "engine": "dynamo mocker + compile_deep_gemm TEST DOUBLE: the plumbing's figures, not GB200 performance",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    chain = result["image_chain"]
    say(f"{'run':6} {'seconds':>8}  compiles per tray")
    say(f"{'cold':6} {result['cold_seconds']:8.1f}  {cold_compiles}")
    say(f"{'warm':6} {result['warm_seconds']:8.1f}  {warm_compiles}")
    say(f"image IDs equal on {len(trays)} trays: {result['image_ids_equal']}")
    if chain:
        say(
            f"image down the chain: {chain['bytes'] / 1e6:.0f} MB to {chain['receivers']} trays, first done at {chain['first_seconds']} s, "
            f"last at {chain['last_seconds']} s (last/first {chain['last_over_first']}, {chain['mb_per_s']} MB/s, unshaped links)"
        )
    say(f"written: {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
