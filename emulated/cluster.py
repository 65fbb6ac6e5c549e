"""Emulated GB200 cluster: Docker-in-Docker "trays" that Ansible reaches over SSH.

Each tray is a container on a Docker network this tool creates, with its own
IP, sshd and inner Docker daemon, so roles start etcd, NATS, the Dynamo
frontend and mocker workers on it exactly as they would on a real tray.

  cluster.py install-engine   start a Docker daemon on this machine
  cluster.py images           build the base, tray, controlplane and serving images
  cluster.py up               start the trays, preload images, write the inventory
  cluster.py status           trays, IPs and the containers inside them
  cluster.py down             remove trays, their volumes and the network

Everything generated lives in build/emulated/ at the repository root.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HERE = REPO / "emulated"
BUILD = REPO / "build" / "emulated"
WHEELHOUSE = BUILD / "wheelhouse"
SSH_KEY = BUILD / "id_ed25519"
INVENTORY = BUILD / "hosts.yml"
STATE = BUILD / "cluster.json"
# The serving image's tokenizer cache (its /opt/hf), for load generators on the controller:
# wideep.gb200.bench's aiperf tokenizes with exactly what the emulated frontend serves with.
TOKENIZER_HF_HOME = BUILD / "hf"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "ca-certificates")

# ---- The engine versions the serving image carries; change them here and nowhere else (the
# image tag, the wheelhouse and the Dockerfile's build arguments follow from these two).
# ai-dynamo + ai-dynamo-runtime: the real Dynamo frontend, and dynamo.mocker, Dynamo's CPU engine,
# which is the TEST DOUBLE for SGLang on GPUs (README: "Test doubles").
DYNAMO_VERSION = "1.6.1"
# The SGLang that ai-dynamo 1.6.1 pins (its [sglang] extra: sglang[diffusion]==0.5.21), i.e. the
# one a real Dynamo 1.6.1 SGLang image holds. METADATA ONLY: installed with --no-deps so that
# importlib.metadata reports that version; it is never imported here (no GPU on the trays; torch
# and its CUDA kernels are not installed), dynamo.mocker serves instead.
SGLANG_VERSION = "0.5.21"

# Installed with --no-deps. ai-dynamo: it requires aisimulate==0.13.0, an NVIDIA stub wheel whose
# install downloads from NVIDIA's index (unreachable here); only dynamo.planner (and the mocker's
# optional --ais-perf-model) import it, so its other requirements are listed below instead.
SERVING_NO_DEPS = (f"ai-dynamo=={DYNAMO_VERSION}", f"ai-dynamo-runtime=={DYNAMO_VERSION}", f"sglang=={SGLANG_VERSION}")
# Installed with their dependencies: the Requires-Dist of the ai-dynamo 1.6.1 wheel (no extra)
# less aisimulate, those of ai-dynamo-runtime 1.6.1, tokenizers for make_tokenizer.py. The
# image build runs `pip check`, which names any requirement this list misses.
SERVING_REQUIREMENTS = (
    "aiohttp>=3.14.3,<4.0",
    "certifi>=2026.10.19",
    "kubernetes>=32.0.1,<33.0.0",
    "msgspec>=0.19.0",
    "prometheus-client>=0.23.1,<1.0",
    "pyzmq>=26.0.0",
    "redis>=6.2.0,<9.0.0",
    "tqdm>=4.0.0",
    "transformers>=4.56.0",
    "typing-extensions>=4.10.0",
    "zstandard>=0.23.0,<1.0",
    "pydantic>=2.10.6,<=2.13.5",  # ai-dynamo-runtime
    "uvloop>=0.21.0",  # ai-dynamo-runtime
    "tokenizers",
    # redis needs it on Python < 3.11.3, and the image's Python is Debian 12's 3.11.2; pip download
    # evaluates that marker against the Python running it (3.11.7 on the dev machines), not the image's.
    "async-timeout>=4.0.3",
)

HASH_LABEL = "wideep.emu.hash"
CLUSTER_LABEL = "wideep.emu.cluster"
FIRST_TRAY_OFFSET = 10  # tray k gets the subnet's address number 10 + k

# Files the base rootfs gets before import: no docs, man pages or locales
# from later apt installs, which keeps every derived image smaller.
DPKG_NODOC = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
APT_NO_RECOMMENDS = 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'


class ClusterError(Exception):
    """A failure with a message meant for the user; main() prints it and exits 1."""


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    out(f"[emulated] {message}")


def run(
    cmd: list[str],
    *,
    check: bool = True,
    stdin: int | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        stdin=stdin,
        input=input_text,
        capture_output=True,
        text=True,
        check=False,  # the caller decides; the error below carries stderr
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip()[-2000:]
        raise ClusterError(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{detail}")
    return proc


def docker(*args: str) -> str:
    return run(["docker", *args]).stdout.strip()


# ---------------------------------------------------------------- engine


def engine_answers() -> bool:
    return run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False).returncode == 0


def require_engine() -> None:
    if not engine_answers():
        raise ClusterError("no Docker daemon answers; run `python3 emulated/cluster.py install-engine` first")


def missing_packages(packages: list[str]) -> list[str]:
    missing = []
    for package in packages:
        status = run(["dpkg-query", "-W", "-f=${Status}", package], check=False).stdout
        if "install ok installed" not in status:
            missing.append(package)
    return missing


def apt_install(packages: list[str]) -> None:
    missing = missing_packages(packages)
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"{shlex.join(cmd)} failed:\n{proc.stderr.strip()[-2000:]}")


def cmd_install_engine(_args: argparse.Namespace) -> None:
    apt_install(["docker.io", "debootstrap"])
    if engine_answers():
        log("Docker daemon already answers")
    else:
        BUILD.mkdir(parents=True, exist_ok=True)
        # No daemon answers, so a pid file left by one that was killed (a session that ended)
        # is stale; dockerd refuses to start while its pid happens to be in use again.
        Path("/var/run/docker.pid").unlink(missing_ok=True)
        log_path = BUILD / "dockerd.log"
        log(f"starting dockerd in the background (log: {log_path})")
        # No systemd here: dockerd runs detached in its own session and
        # survives this process; its pid is kept for whoever wants to stop it.
        with open(log_path, "ab") as log_file:
            daemon = subprocess.Popen(
                ["dockerd"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (BUILD / "dockerd.pid").write_text(f"{daemon.pid}\n")
        deadline = time.monotonic() + 60
        while not engine_answers():
            if daemon.poll() is not None:
                raise ClusterError(f"dockerd exited with {daemon.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise ClusterError(f"dockerd did not answer within 60 s; see {log_path}")
            time.sleep(0.5)
    # The CLI on PATH may be newer than the daemon (docker 28 vs 20.10); it
    # negotiates down to the daemon's API version. Show both so a mismatch is visible.
    versions = docker(
        "version",
        "--format",
        "client {{.Client.Version}} (API {{.Client.APIVersion}}), daemon {{.Server.Version}} (API {{.Server.APIVersion}})",
    )
    log(f"engine ready: {versions}")


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class Images:
    base: str = "wideep-emu/base:bookworm"
    tray: str = "wideep-emu/tray:bookworm"
    controlplane: str = "wideep-emu/controlplane:bookworm"
    serving: str = f"wideep-emu/serving:dynamo-{DYNAMO_VERSION}"

    def inner(self) -> list[str]:
        """Images the trays' inner daemons get preloaded: the serving image only on the head tray
        (see preloaded); wideep.gb200.stage gives it to the others, as on real trays."""
        return [self.controlplane, self.serving]

    def preloaded(self, tray: Tray, serving_everywhere: bool = False) -> list[str]:
        return [self.controlplane, *([self.serving] if serving_everywhere or tray.group == "dynamo_head" else [])]


IMAGES = Images()


def image_label(image: str, label: str) -> str | None:
    proc = run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', image],
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_id(image: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", image)


def hash_tree(digest: hashlib._Hash, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())


def build_base() -> None:
    spec = f"{DEBIAN_SUITE} {DEBIAN_MIRROR} minbase {','.join(BASE_PACKAGES)}\n{DPKG_NODOC}{APT_NO_RECOMMENDS}"
    content_hash = hashlib.sha256(spec.encode()).hexdigest()[:16]
    if image_label(IMAGES.base, HASH_LABEL) == content_hash:
        log(f"{IMAGES.base} is up to date")
        return
    tarball = BUILD / f"rootfs-{DEBIAN_SUITE}-{content_hash}.tar"
    if not tarball.exists():
        rootfs = BUILD / f"rootfs-{DEBIAN_SUITE}-{content_hash}"
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"debootstrap {DEBIAN_SUITE} into {rootfs} (about a minute)")
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                DEBIAN_SUITE,
                str(rootfs),
                DEBIAN_MIRROR,
            ]
        )
        (rootfs / "etc/dpkg/dpkg.cfg.d/01-wideep-emu-nodoc").write_text(DPKG_NODOC)
        (rootfs / "etc/apt/apt.conf.d/01-wideep-emu-norecommends").write_text(APT_NO_RECOMMENDS)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_suffix(".tar.partial")
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs)
    log(f"docker import {tarball.name} as {IMAGES.base}")
    run(
        [
            "docker",
            "import",
            "--change",
            f"LABEL {HASH_LABEL}={content_hash}",
            "--change",
            'CMD ["/bin/bash"]',
            str(tarball),
            IMAGES.base,
        ]
    )


def wheelhouse_stamp() -> str:
    """What a complete wheelhouse was downloaded for: it changes with any requirement."""
    return "\n".join(["# --no-deps", *SERVING_NO_DEPS, "# with dependencies", *SERVING_REQUIREMENTS])


def ensure_wheelhouse() -> None:
    """Download the serving image's wheels on this machine (whose pip trusts the proxy).

    The wheelhouse holds exactly the wheels of the current requirements, plus the two lists the
    image build installs from (no-deps.txt, requirements.txt); it is downloaded anew whenever
    the requirements change, so no wheel of an earlier version lingers in the build context.
    """
    stamp = WHEELHOUSE / ".complete"
    wanted = wheelhouse_stamp()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    if sys.version_info[:2] != (3, 11):
        raise ClusterError("the wheelhouse must be downloaded by Python 3.11, the serving image's Python")
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    WHEELHOUSE.mkdir(parents=True)
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d", str(WHEELHOUSE)]
    log(f"pip download --no-deps {' '.join(SERVING_NO_DEPS)} into {WHEELHOUSE}")
    run([*download, "--no-deps", *SERVING_NO_DEPS])
    log(f"pip download {' '.join(SERVING_REQUIREMENTS)} into {WHEELHOUSE}")
    run([*download, *SERVING_REQUIREMENTS])
    (WHEELHOUSE / "no-deps.txt").write_text("\n".join(SERVING_NO_DEPS) + "\n")
    (WHEELHOUSE / "requirements.txt").write_text("\n".join(SERVING_REQUIREMENTS) + "\n")
    stamp.write_text(wanted)


def build_derived(image: str, name: str, extra: dict[str, Path], build_args: dict[str, str] | None = None) -> None:
    """docker build emulated/images/NAME (plus EXTRA dirs, with BUILD_ARGS) FROM the base image.

    The image carries a hash of everything that goes into it; a build is
    skipped when the existing image carries the same hash.
    """
    build_args = build_args or {}
    source = HERE / "images" / name
    digest = hashlib.sha256(image_id(IMAGES.base).encode())
    hash_tree(digest, source)
    for dest, path in sorted(extra.items()):
        digest.update(dest.encode())
        hash_tree(digest, path)
    for arg, value in sorted(build_args.items()):
        digest.update(f"{arg}={value}".encode() + b"\0")
    build_args = {"BASE": IMAGES.base, **build_args}  # BASE's id is hashed above
    content_hash = digest.hexdigest()[:16]
    if image_label(image, HASH_LABEL) == content_hash:
        log(f"{image} is up to date")
        return
    context = BUILD / f"context-{name}"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(source, context)
    for dest, path in extra.items():
        # Hard links: the wheelhouse is large and never modified in place.
        shutil.copytree(path, context / dest, copy_function=os.link)
    build_log = BUILD / f"build-{name}.log"
    log(f"docker build {image} (log: {build_log})")
    started = time.monotonic()
    args = [item for arg, value in sorted(build_args.items()) for item in ("--build-arg", f"{arg}={value}")]
    cmd = ["docker", "build", *args, "--label", f"{HASH_LABEL}={content_hash}", "-t", image, str(context)]
    proc = run(cmd, check=False)
    build_log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise ClusterError(f"docker build {image} failed; last lines of {build_log}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    shutil.rmtree(context)
    log(f"built {image} in {time.monotonic() - started:.0f} s")


def ensure_images() -> None:
    require_engine()
    BUILD.mkdir(parents=True, exist_ok=True)
    build_base()
    build_derived(IMAGES.tray, "tray", {})
    build_derived(IMAGES.controlplane, "controlplane", {})
    ensure_wheelhouse()
    build_derived(
        IMAGES.serving,
        "serving",
        {"wheelhouse": WHEELHOUSE},
        # The Dockerfile fails the build unless the installed packages report these versions.
        {"DYNAMO_VERSION": DYNAMO_VERSION, "SGLANG_VERSION": SGLANG_VERSION},
    )
    # Dangling layers from superseded builds would otherwise pile up.
    docker("image", "prune", "--force", "--filter", "label=" + HASH_LABEL)


def cmd_images(_args: argparse.Namespace) -> None:
    started = time.monotonic()
    ensure_images()
    for image in (IMAGES.base, IMAGES.tray, IMAGES.controlplane, IMAGES.serving):
        size = int(docker("image", "inspect", "--format", "{{.Size}}", image))
        log(f"{image:40} {image_id(image)[7:19]}  {size / 1e6:7.0f} MB")
    log(f"images ready in {time.monotonic() - started:.0f} s")


# ---------------------------------------------------------------- topology


@dataclass(frozen=True)
class Tray:
    index: int
    ip: str
    group: str  # dynamo_head, prefill_N or decode_N
    rank: int  # node rank inside the worker group

    @property
    def host(self) -> str:
        return f"tray{self.index}"


@dataclass(frozen=True)
class Topology:
    name: str
    subnet: ipaddress.IPv4Network
    prefill_workers: int
    prefill_nodes: int
    decode_workers: int
    decode_nodes: int

    @property
    def network(self) -> str:
        return self.name

    def container(self, tray: Tray) -> str:
        return f"{self.name}-{tray.host}"

    def volume(self, tray: Tray) -> str:
        return f"{self.container(tray)}-docker"

    def trays(self) -> list[Tray]:
        groups = [("dynamo_head", 1)]
        groups += [(f"prefill_{w}", self.prefill_nodes) for w in range(self.prefill_workers)]
        groups += [(f"decode_{w}", self.decode_nodes) for w in range(self.decode_workers)]
        trays: list[Tray] = []
        for group, nodes in groups:
            for rank in range(nodes):
                index = len(trays)
                ip = str(self.subnet.network_address + FIRST_TRAY_OFFSET + index)
                trays.append(Tray(index, ip, group, rank))
        last = ipaddress.IPv4Address(trays[-1].ip)
        if last >= self.subnet.broadcast_address:
            raise ClusterError(f"{len(trays)} trays do not fit in --subnet {self.subnet}; use a larger one")
        return trays


def topology_from_args(args: argparse.Namespace) -> Topology:
    try:
        subnet = ipaddress.IPv4Network(args.subnet)
    except ValueError as exc:
        raise ClusterError(f"--subnet {args.subnet!r} is not an IPv4 network: {exc}") from exc
    for option in ("prefill_workers", "prefill_nodes", "decode_workers", "decode_nodes"):
        if getattr(args, option) < 1:
            raise ClusterError(f"--{option.replace('_', '-')} must be at least 1")
    return Topology(args.name, subnet, args.prefill_workers, args.prefill_nodes, args.decode_workers, args.decode_nodes)


# ---------------------------------------------------------------- up


def ensure_network(topo: Topology) -> None:
    proc = run(
        ["docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", topo.network],
        check=False,
    )
    if proc.returncode == 0:
        if proc.stdout.strip() != str(topo.subnet):
            raise ClusterError(
                f"network {topo.network} exists with subnet {proc.stdout.strip()}, not {topo.subnet}; "
                f"run `cluster.py down --name {topo.name}` or pass --subnet {proc.stdout.strip()}"
            )
        return
    log(f"creating network {topo.network} ({topo.subnet})")
    docker("network", "create", "--subnet", str(topo.subnet), "--label", f"{CLUSTER_LABEL}={topo.name}", topo.network)


def ensure_ssh_key() -> str:
    if not SSH_KEY.exists():
        log(f"generating SSH key {SSH_KEY}")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wideep-emu", "-f", str(SSH_KEY)])
    return SSH_KEY.with_suffix(".pub").read_text().strip()


def cluster_containers(name: str) -> dict[str, dict[str, Any]]:
    """Containers (any state) labelled as part of cluster NAME, by container name."""
    ids = docker("ps", "-aq", "--filter", f"label={CLUSTER_LABEL}={name}").split()
    if not ids:
        return {}
    details = json.loads(docker("inspect", *ids))
    return {d["Name"].lstrip("/"): d for d in details}


def tray_mismatch(topo: Topology, tray: Tray, details: dict[str, Any], tray_image: str) -> str | None:
    """Why an existing tray container must be recreated, or None if it can stay."""
    if details["Image"] != tray_image:
        return "the tray image changed"
    networks = details["NetworkSettings"]["Networks"]
    ip = networks.get(topo.network, {}).get("IPAMConfig") or {}
    if ip.get("IPv4Address") != tray.ip:
        return f"its address is not {tray.ip}"
    return None


def remove_trays(containers: list[str]) -> None:
    """Remove tray containers and their /var/lib/docker volumes (one call: the CLI removes in parallel)."""
    if not containers:
        return
    docker("rm", "--force", "--volumes", *containers)
    run(["docker", "volume", "rm", *(f"{c}-docker" for c in containers)], check=False)


def start_tray(topo: Topology, tray: Tray) -> None:
    container = topo.container(tray)
    log(f"starting {container} ({tray.ip}, {tray.group} rank {tray.rank})")
    docker(
        "run",
        "--detach",
        "--name",
        container,
        "--hostname",
        tray.host,
        "--network",
        topo.network,
        "--ip",
        tray.ip,
        "--network-alias",
        tray.host,
        "--label",
        f"{CLUSTER_LABEL}={topo.name}",
        # --privileged fails here (no CAP_SYS_RESOURCE in the sandbox); this
        # is the set that lets the inner dockerd run (see ENVIRONMENT.md).
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--volume",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--volume",
        f"{topo.volume(tray)}:/var/lib/docker",
        # tini as PID 1 reaps what sshd sessions and the inner daemon orphan.
        "--init",
        IMAGES.tray,
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def ssh_base(ip: str) -> list[str]:
    return [
        "ssh",
        "-i",
        str(SSH_KEY),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
        f"root@{ip}",
    ]


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


def prepare_tray(topo: Topology, tray: Tray, public_key: str) -> None:
    """Install the SSH key, then wait until sshd and the inner dockerd answer."""
    container = topo.container(tray)
    # Written on every `up` (cheap, idempotent) so a regenerated key is picked up.
    run(
        ["docker", "exec", "-i", container, "sh", "-c", "umask 077 && cat > /root/.ssh/authorized_keys"],
        input_text=public_key + "\n",
    )
    wait_for(f"sshd on {container} ({tray.ip}:22)", lambda: port_open(tray.ip, 22), 60)
    wait_for(
        f"SSH login to {container}",
        lambda: run([*ssh_base(tray.ip), "true"], check=False).returncode == 0,
        30,
    )
    wait_for(
        f"the inner dockerd of {container} (see /var/log/dockerd.log inside it)",
        lambda: run(["docker", "exec", container, "docker", "info"], check=False).returncode == 0,
        90,
    )


def saved_image(image: str) -> Path:
    """`docker save` IMAGE once per image id into build/emulated/images/."""
    ident = image_id(image)
    cache = BUILD / "images"
    cache.mkdir(parents=True, exist_ok=True)
    stem = image.replace("/", "_").replace(":", "_")
    tar = cache / f"{stem}-{ident[7:19]}.tar"
    if not tar.exists():
        for stale in cache.glob(f"{stem}-*.tar"):
            stale.unlink()
        log(f"docker save {image}")
        partial = tar.with_suffix(".partial")
        run(["docker", "save", "-o", str(partial), image])
        partial.rename(tar)
    return tar


def load_images(topo: Topology, tray: Tray, tars: dict[str, Path]) -> None:
    container = topo.container(tray)
    for image, tar in tars.items():
        inner = run(["docker", "exec", container, "docker", "image", "inspect", "--format", "{{.Id}}", image], check=False)
        if inner.returncode == 0 and inner.stdout.strip() == image_id(image):
            continue
        started = time.monotonic()
        with open(tar, "rb") as stream:
            run(["docker", "exec", "-i", container, "docker", "load", "--quiet"], stdin=stream.fileno())
        log(f"{container}: loaded {image} in {time.monotonic() - started:.0f} s")


def inventory_yaml(topo: Topology, trays: list[Tray]) -> str:
    """The inventory contract (README, "The inventory contract"): gb200 > dynamo_head, prefill > prefill_N, decode > decode_N."""
    lines = [
        f"# Generated by emulated/cluster.py up --name {topo.name}; do not edit.",
        "all:",
        "  children:",
        "    gb200:",
        "      hosts:",
    ]
    lines += [f"        {t.host}:\n          ansible_host: {t.ip}" for t in trays]
    common_args = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    lines += [
        "      vars:",
        "        ansible_user: root",
        f"        ansible_ssh_private_key_file: {SSH_KEY}",
        f"        ansible_ssh_common_args: {common_args}",
        "        ansible_python_interpreter: /usr/bin/python3",
        "      children:",
        "        dynamo_head:",
        "          hosts:",
    ]
    lines += [f"            {t.host}:" for t in trays if t.group == "dynamo_head"]
    for role in ("prefill", "decode"):
        lines += [f"        {role}:", "          children:"]
        groups = dict.fromkeys(t.group for t in trays if t.group.startswith(role + "_"))
        for group in groups:
            lines += [f"            {group}:", "              hosts:"]
            lines += [f"                {t.host}:" for t in trays if t.group == group]  # rank order
    return "\n".join(lines) + "\n"


def write_state(topo: Topology, trays: list[Tray]) -> None:
    state = {
        "name": topo.name,
        "network": topo.network,
        "subnet": str(topo.subnet),
        "inventory": str(INVENTORY),
        "ssh_private_key": str(SSH_KEY),
        "images": {
            role: {"name": image, "id": image_id(image)}
            for role, image in (
                ("base", IMAGES.base),
                ("tray", IMAGES.tray),
                ("controlplane", IMAGES.controlplane),
                ("serving", IMAGES.serving),
            )
        },
        "trays": [
            {
                "host": t.host,
                "container": topo.container(t),
                "ip": t.ip,
                "group": t.group,
                "rank": t.rank,
            }
            for t in trays
        ],
    }
    STATE.write_text(json.dumps(state, indent=2) + "\n")


def cmd_up(args: argparse.Namespace) -> None:
    started = time.monotonic()
    topo = topology_from_args(args)
    trays = topo.trays()
    ensure_images()
    public_key = ensure_ssh_key()
    ensure_network(topo)

    tray_image = image_id(IMAGES.tray)
    existing = cluster_containers(topo.name)
    wanted = {topo.container(t): t for t in trays}
    stale = []
    for container, details in sorted(existing.items()):
        tray = wanted.get(container)
        reason = "not part of this topology" if tray is None else tray_mismatch(topo, tray, details, tray_image)
        if reason is not None:
            log(f"removing {container}: {reason}")
            stale.append(container)
    remove_trays(stale)
    for container, tray in wanted.items():
        if container not in existing or container in stale:
            start_tray(topo, tray)
        elif not existing[container]["State"]["Running"]:
            log(f"starting stopped {container}")
            docker("start", container)

    tars = {image: saved_image(image) for image in IMAGES.inner()}
    # Two loads at a time: each is disk- and CPU-bound, and this machine has 2 cores.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(prepare_and_load, topo, tray, public_key, tars, args.preload_serving) for tray in trays]
        for future in futures:
            future.result()

    write_source_model(topo, trays[0], args.model_shards, args.model_shard_bytes)
    export_tokenizer()
    INVENTORY.write_text(inventory_yaml(topo, trays))
    write_state(topo, trays)
    log(f"inventory: {INVENTORY}")
    log(f"cluster {topo.name} up with {len(trays)} trays in {time.monotonic() - started:.0f} s")


def export_tokenizer() -> None:
    """Copy the serving image's Hugging Face cache (its stand-in tokenizer) to TOKENIZER_HF_HOME,
    once per serving image (inventories/emulated: bench_env HF_HOME)."""
    stamp = TOKENIZER_HF_HOME / ".image-id"
    wanted = image_id(IMAGES.serving)
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return
    shutil.rmtree(TOKENIZER_HF_HOME, ignore_errors=True)
    TOKENIZER_HF_HOME.mkdir(parents=True)
    container = docker("create", IMAGES.serving, "true").strip()
    try:
        run(["docker", "cp", f"{container}:/opt/hf/.", str(TOKENIZER_HF_HOME)])
    finally:
        run(["docker", "rm", container], check=False)
    stamp.write_text(wanted + "\n")
    log(f"tokenizer cache of {IMAGES.serving}: {TOKENIZER_HF_HOME}")


# Where the head tray keeps the synthetic model that stands in for DeepSeek-R1's weights
# (inventories/emulated: model_weights_source). make_model.py keeps existing shards, so a
# second `up` writes nothing.
SOURCE_MODEL = "/srv/wideep-source/DeepSeek-R1"


def write_source_model(topo: Topology, head: Tray, shards: int, shard_bytes: int) -> None:
    script = (HERE / "make_model.py").read_text()
    run(
        ["docker", "exec", "-i", topo.container(head), "python3", "-", SOURCE_MODEL, "--shards", str(shards), "--shard-bytes", str(shard_bytes)],
        input_text=script,
    )
    log(f"synthetic model on {head.host}:{SOURCE_MODEL}: {shards} x {shard_bytes} bytes")


def prepare_and_load(topo: Topology, tray: Tray, public_key: str, tars: dict[str, Path], serving_everywhere: bool = False) -> None:
    prepare_tray(topo, tray, public_key)
    wanted = IMAGES.preloaded(tray, serving_everywhere)
    load_images(topo, tray, {image: tar for image, tar in tars.items() if image in wanted})


# ---------------------------------------------------------------- down / status


def cmd_down(args: argparse.Namespace) -> None:
    require_engine()
    containers = sorted(cluster_containers(args.name))
    if containers:
        log(f"removing {', '.join(containers)}")
        remove_trays(containers)
    if run(["docker", "network", "inspect", args.name], check=False).returncode == 0:
        log(f"removing network {args.name}")
        docker("network", "rm", args.name)
    # build/emulated/ holds one inventory: the one of the cluster `up` ran last.
    if STATE.exists() and json.loads(STATE.read_text()).get("name") == args.name:
        INVENTORY.unlink(missing_ok=True)
        STATE.unlink()
    log(f"cluster {args.name} is down")


def cmd_status(args: argparse.Namespace) -> None:
    require_engine()
    containers = cluster_containers(args.name)
    if not containers:
        out(f"cluster {args.name}: no trays")
        return
    # Groups come from the last `up` (cluster.json), the one record of the topology.
    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    trays = state["trays"] if state.get("name") == args.name else []
    groups = {t["container"]: f"{t['group']}[{t['rank']}]" for t in trays}
    for container, details in sorted(containers.items(), key=lambda item: int(item[0].rsplit("tray", 1)[1])):
        networks = details["NetworkSettings"]["Networks"]
        ip = networks.get(args.name, {}).get("IPAddress", "-")
        state_name = details["State"]["Status"]
        out(f"{container:24} {ip:16} {groups.get(container, '?'):16} {state_name}")
        if state_name != "running":
            continue
        inner = run(
            ["docker", "exec", container, "docker", "ps", "-a", "--format", "{{.Names}}\t{{.Image}}\t{{.Status}}"],
            check=False,
        )
        listing = inner.stdout.strip() if inner.returncode == 0 else "(inner dockerd not answering)"
        for line in listing.splitlines():
            out(f"    {line}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install-engine", help="install docker.io/debootstrap if missing and start dockerd").set_defaults(func=cmd_install_engine)
    sub.add_parser("images", help="build the emulation images (skipped when up to date)").set_defaults(func=cmd_images)
    up = sub.add_parser("up", help="start (or converge) the emulated cluster and write the inventory")
    up.add_argument("--prefill-workers", type=int, default=1, help="prefill worker groups (default 1)")
    up.add_argument("--prefill-nodes", type=int, default=2, help="trays per prefill worker (default 2)")
    up.add_argument("--decode-workers", type=int, default=1, help="decode worker groups (default 1)")
    up.add_argument("--decode-nodes", type=int, default=2, help="trays per decode worker (default 2)")
    # WIDEEP_EMU_NAME / WIDEEP_EMU_SUBNET: a second cluster beside the first (another checkout or
    # worktree), e.g. WIDEEP_EMU_NAME=wideep-emu-b WIDEEP_EMU_SUBNET=172.31.241.0/24 make cluster-test.
    default_subnet = os.environ.get("WIDEEP_EMU_SUBNET", "172.31.240.0/24")
    up.add_argument("--subnet", default=default_subnet, help=f"Docker network subnet (default {default_subnet}; env WIDEEP_EMU_SUBNET)")
    up.add_argument("--model-shards", type=int, default=64, help="shards of the synthetic model on tray0 (default 64)")
    up.add_argument("--model-shard-bytes", type=int, default=1 << 20, help="bytes per shard (default 1 MiB)")
    up.add_argument(
        "--preload-serving",
        action="store_true",
        help="load the serving image into every tray, streamed from this machine (no archive on the trays' disks), "
        "instead of tray0 only; for racks whose 17 transient archives do not fit this machine's disk (make bench-rack)",
    )
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="remove the trays, their volumes and the network")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="show trays, IPs and their inner containers")
    status.set_defaults(func=cmd_status)
    default_name = os.environ.get("WIDEEP_EMU_NAME", "wideep-emu")
    for subparser in (up, down, status):
        subparser.add_argument("--name", default=default_name, help=f"cluster name prefix (default {default_name}; env WIDEEP_EMU_NAME)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.stderr.write("error: run as root (debootstrap, apt-get and dockerd need it)\n")
        return 1
    try:
        args.func(args)
    except ClusterError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
