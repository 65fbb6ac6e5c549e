"""wideep.gb200.stage's serving image and kernel caches on the emulated trays.

The serving image is preloaded on tray0 only (emulated/cluster.py); the stage gives it to the
other trays through the chain. The kernel compile is the emulated image's TEST DOUBLE of
sglang.compile_deep_gemm (emulated/images/serving/compile_deep_gemm_double.py); everything
around it (key, compile in the worker's container, judging, marker, fan-out) is the real role.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from cluster_helpers import Tray, run_playbook

ROOT_DIR = "/var/lib/wideep/kernel-cache"


def worker_trays(plan: dict[str, Any]) -> list[str]:
    return [h for w in plan["workers"] for h in w["hosts"]]


def configs(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """config -> {hosts of its workers, its first worker's hosts (where it compiles), deep_gemm}."""
    out: dict[str, dict[str, Any]] = {}
    for w in plan["workers"]:
        c = out.setdefault(w["kernel_cache"]["config"], {"trays": [], "compile_hosts": list(w["hosts"]), "cache": w["kernel_cache"]})
        c["trays"] += w["hosts"]
    return out


def compiles(tray: Tray) -> list[dict[str, Any]]:
    out = tray.host.run(f"cat {ROOT_DIR}/compile-log.jsonl 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def marker(tray: Tray, config: str) -> dict[str, Any] | None:
    result = tray.host.run(f"cat {ROOT_DIR}/{config}/KEY.json")
    return json.loads(result.stdout) if result.rc == 0 else None


def stage(*args: str) -> Any:
    return run_playbook("stage", *args)


def wipe(tray: Tray, *paths: str) -> None:
    assert tray.host.run("rm -rf " + " ".join(shlex.quote(p) for p in paths)).rc == 0


# ---------------------------------------------------------------- the serving image


def test_the_image_goes_down_the_chain_a_corrupted_transfer_is_not_loaded_and_a_rerun_moves_nothing(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    image, tray0, tray4 = plan["image"], trays["tray0"], trays["tray4"]
    wanted = tray0.image_id(image)
    archive_dir = f"/var/lib/wideep/images/{wanted[7:19]}"
    for tray in trays.values():  # no archive left by an earlier run
        wipe(tray, "/var/lib/wideep/images")
    # tray4 loses the image (its running worker keeps the layers; the name is gone).
    tray4.docker("image", "rm", "--force", image)
    run = stage("--tags", "image", "-e", "serving_image_keep_archive=true")
    assert run.rc == 0, run.describe()
    assert "sent" in run.output and "to 1 tray(s) (chain)" in run.output, run.describe()
    assert tray4.image_id(image) == wanted
    # The source's archive no longer matches its recorded sha256 (bit rot after the manifest was
    # made, same size and mtime): the receiver must refuse it, and never load it.
    tray4.docker("image", "rm", "--force", image)
    wipe(tray4, archive_dir)
    corrupt = (
        f"import os; p = '{archive_dir}/image.tar'; st = os.stat(p); f = open(p, 'r+b'); f.seek(st.st_size // 2); b = f.read(1); "
        "f.seek(st.st_size // 2); f.write(bytes([b[0] ^ 0xFF])); f.close(); os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))"
    )
    assert tray0.host.run(f"python3 -c {shlex.quote(corrupt)}").rc == 0
    run = stage("--tags", "image", "-e", "serving_image_keep_archive=true", "-e", '{"broadcast_passes": 1}')
    assert run.rc != 0, run.describe()
    assert "still lack files of the image" in run.output, run.describe()
    assert "was removed: the next run saves it again from the image" in run.output, run.describe()
    assert tray4.host.run(f"docker image inspect {shlex.quote(image)}").rc != 0, "a corrupted archive was loaded"
    # The bad archive was dropped: the next run saves it again and tray4 catches up; then nothing moves.
    run = stage("--tags", "image")
    assert run.rc == 0, run.describe()
    assert {t.image_id(image) for t in trays.values()} == {wanted}
    for tray in trays.values():
        assert tray.host.run(f"test -e {archive_dir}").rc != 0, f"{tray.name} kept the archive"
    run = stage("--tags", "image")
    assert run.rc == 0 and "nothing moves" in run.output, run.describe()
    assert "changed=0" in run.output.split("PLAY RECAP", 1)[1]


def test_a_tray_holding_another_image_under_the_name_gets_the_planned_one(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    """An earlier build left under the same name (what `docker_image source: load` alone would keep)."""
    image, tray3 = plan["image"], trays["tray3"]
    wanted = trays["tray0"].image_id(image)
    other = next(i for i in tray3.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split() if i != image)
    tray3.docker("tag", other, image)
    assert tray3.image_id(image) != wanted
    run = stage("--tags", "image")
    assert run.rc == 0, run.describe()
    assert tray3.image_id(image) == wanted


def test_the_image_is_checked_for_what_serving_needs() -> None:
    """The emulated image has libmlx5.so and the recipe's engine; it has no gdrcopy (the inventory
    says so): with the check on, the run stops naming what is missing and the fix."""
    run = stage("--tags", "image", "-e", "serving_image_require_gdrcopy=true")
    assert run.rc != 0, run.describe()
    assert "has no gdrcopy library (libgdrapi.so)" in run.output and "libmlx5" not in run.output.split("Refuse an image", 1)[1]


# ---------------------------------------------------------------- the kernel caches


def test_the_workers_run_with_the_planned_cache_mount_and_env(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    for host, spec in plan["hosts"].items():
        for container in (c for c in spec["containers"] if c["kind"] == "worker"):
            info = trays[host].containers()[container["name"]]
            cache = next(w["kernel_cache"] for w in plan["workers"] if w["name"] == spec["worker"])
            mounts = {m["Destination"]: m["Source"] for m in info["Mounts"]}
            assert mounts["/wideep/kernel-cache"] == cache["dir"]
            env = dict(e.split("=", 1) for e in info["Config"]["Env"])
            assert {k: env.get(k) for k in cache["env"]} == cache["env"]
            assert cache["env"]["SGLANG_DG_CACHE_DIR"] == "/wideep/kernel-cache/deep_gemm"


def test_cold_one_compile_per_configuration_warm_none(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    hosts = worker_trays(plan)
    for host in hosts:
        wipe(trays[host], ROOT_DIR)
    run = stage("--tags", "kernels")
    assert run.rc == 0, run.describe()
    for config, c in configs(plan).items():
        for host in c["trays"]:
            runs = [r for r in compiles(trays[host]) if r["config"] == config]
            assert len(runs) == (1 if host in c["compile_hosts"] else 0), (host, runs)
            m = marker(trays[host], config)
            assert m is not None and m["key"]["config"] == config and m["key"]["image_id"] == trays[host].image_id(plan["image"])
            assert m["kernels"]["deep_gemm"] > 0 and m["kernels"]["triton"] == 3
        # The double recorded the flags it was given: the plan's, with each tray's rank.
        for rank, host in enumerate(c["compile_hosts"]):
            recorded = json.loads(trays[host].host.file(f"{c['cache']['dir']}/wideep-emu-compile/args-rank{rank}.json").content_string)
            assert recorded["argv"] == c["cache"]["compile_argv"][str(rank)]
            assert recorded["env"]["SGLANG_DG_CACHE_DIR"] == "/wideep/kernel-cache/deep_gemm"
    before = {h: len(compiles(trays[h])) for h in hosts}
    run = stage("--tags", "kernels")
    assert run.rc == 0, run.describe()
    assert {h: len(compiles(trays[h])) for h in hosts} == before
    assert "ready: all 2 tray(s) hold it" in run.output and "changed=0" in run.output.split("PLAY RECAP", 1)[1]


def test_a_tray_that_lost_its_cache_receives_it_without_a_compile(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    decode = next(w for w in plan["workers"] if w["role"] == "decode")
    config, (head, other) = decode["kernel_cache"]["config"], decode["hosts"][:2]
    assert stage("--tags", "kernels").rc == 0
    before = len(compiles(trays[other]))
    wipe(trays[other], f"{ROOT_DIR}/{config}")
    run = stage("--tags", "kernels")
    assert run.rc == 0, run.describe()
    assert f"fanout: {head} holds it; {other} receive it" in run.output, run.describe()
    assert len(compiles(trays[other])) == before
    assert marker(trays[other], config) == marker(trays[head], config)


def test_a_compile_that_fails_after_caching_is_accepted_by_content(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    decode = next(w for w in plan["workers"] if w["role"] == "decode")
    config = decode["kernel_cache"]["config"]
    for host in decode["hosts"]:
        wipe(trays[host], f"{ROOT_DIR}/{config}")
    run = stage("--tags", "kernels", "-e", json.dumps({"kernel_cache_compile_env": {"WIDEEP_EMU_COMPILE_FAIL": "bootstrap"}}))
    assert run.rc == 0, run.describe()
    assert "exit code 1, accepted by content" in run.output, run.describe()
    assert all(marker(trays[h], config) for h in decode["hosts"])


def test_a_real_compile_failure_is_reported_with_its_log_tail_naming_the_tray(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    decode = next(w for w in plan["workers"] if w["role"] == "decode")
    config, head = decode["kernel_cache"]["config"], decode["hosts"][0]
    for host in decode["hosts"]:
        wipe(trays[host], f"{ROOT_DIR}/{config}")
    run = stage("--tags", "kernels", "-e", json.dumps({"kernel_cache_compile_env": {"WIDEEP_EMU_COMPILE_FAIL": "error"}}))
    assert run.rc != 0, run.describe()
    failed = [line for line in run.output.splitlines() if line.startswith(f"fatal: [{head}]")]
    assert failed, run.describe()
    assert f"the compile of configuration {config} failed" in run.output and "CUDA out of memory" in run.output
    assert marker(trays[head], config) is None
    assert stage("--tags", "kernels").rc == 0  # and the next run compiles it


def test_a_changed_configuration_recompiles_only_itself(plan: dict[str, Any], trays: dict[str, Tray]) -> None:
    assert stage("--tags", "kernels").rc == 0
    hosts = worker_trays(plan)
    before = {h: compiles(trays[h]) for h in hosts}
    run = stage("--tags", "kernels", "-e", json.dumps({"gb200_decode_args": {"cuda-graph-max-bs-decode": 96}}))
    assert run.rc == 0, run.describe()
    decode = next(w for w in plan["workers"] if w["role"] == "decode")
    new = {h: compiles(trays[h])[len(before[h]) :] for h in hosts}
    assert all(not new[h] for h in hosts if h not in decode["hosts"]), new
    assert [len(new[h]) for h in decode["hosts"]] == [1, 1]
    assert {r["config"] for h in decode["hosts"] for r in new[h]} != {decode["kernel_cache"]["config"]}
