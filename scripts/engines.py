# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""The engines the recipes pin: their venvs, their argument catalogues, their real parsers.

    python scripts/engines.py pairs                 the (Dynamo, SGLang) pairs the recipes name
    python scripts/engines.py venv [PAIR ...]       build (or reuse) each pair's venv; print its python
    python scripts/engines.py catalogue [PAIR ...]  regenerate engines/catalogue/*.json from the venvs
    python scripts/engines.py check                 regenerate into a temporary folder and compare
    python scripts/engines.py discover PAIR         find the smallest import closure (maintainers)

A PAIR is written dynamo-1.6.1+sglang-0.5.21. Each pair's venv holds the released `sglang`
and `ai-dynamo` wheels from PyPI (installed --no-deps) plus exactly the packages that
`import dynamo.sglang.args` needs, pinned in engines/requirements/<PAIR>.txt; the heavy
common part (torch, torchvision) is one shared base venv, reached through a .pth file. Venvs
live in a cache outside the checkout (WIDEEP_ENGINE_CACHE, default ~/.cache/wideep-gb200/engines),
keyed by the hash of what goes into them, so a second run on one machine installs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "engines" / "requirements"
CATALOGUE = ROOT / "engines" / "catalogue"
GENERATOR = ROOT / "scripts" / "engine_catalogue.py"
PAIR_RE = re.compile(r"^dynamo-(?P<dynamo>[0-9][0-9a-z.]*)\+sglang-(?P<sglang>[0-9][0-9a-z.]*)$")
# pip's import-name -> distribution-name map, for `discover` only.
DISTRIBUTION_OF = {
    "PIL": "pillow",
    "yaml": "pyyaml",
    "zmq": "pyzmq",
    "attr": "attrs",
    "IPython": "ipython",
    "opentelemetry": "opentelemetry-api",
    "google": "protobuf",
    "multipart": "python-multipart",
    "dateutil": "python-dateutil",
}


def log(message: str) -> None:
    sys.stderr.write(f"[engines] {message}\n")
    sys.stderr.flush()


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wideep-gb200" / "engines"
    return Path(os.environ.get("WIDEEP_ENGINE_CACHE", default))


def pair_name(dynamo: str, sglang: str) -> str:
    return f"dynamo-{dynamo}+sglang-{sglang}"


def recipe_pairs() -> list[str]:
    """Every pair a bundled recipe pins or says it also parses under, in a stable order."""
    out: list[str] = []
    for path in sorted((ROOT / "recipes").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        engine = data.get("engine") or {}
        for entry in [engine, *engine.get("also_parses", [])]:
            if entry.get("dynamo") and entry.get("sglang"):
                name = pair_name(str(entry["dynamo"]), str(entry["sglang"]))
                if name not in out:
                    out.append(name)
    return out


def _python() -> str:
    """The interpreter engine venvs are made from: the one under this script's own venv (whatever
    PATH says), so that the cache key, and the cache, are the same from make and from a shell."""
    chosen = os.environ.get("WIDEEP_ENGINE_PYTHON") or getattr(sys, "_base_executable", "") or sys.executable
    return os.path.realpath(chosen)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"engines: {venv} has no site-packages")
    return found[0]


def _pip(venv: Path, *args: str) -> None:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"engines: {' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")


def _build(target: Path, populate: object) -> Path:
    """Build a venv in a temporary sibling and rename it into place: never a half-built cache entry."""
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        subprocess.run([_python(), "-m", "venv", str(work)], check=True)
        populate(work)  # type: ignore[operator]
        (work / ".complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # A venv records its own path in pyvenv.cfg only as `home` (the interpreter's), so the rename is safe.
    return target


def base_venv() -> Path:
    spec = (REQUIREMENTS / "base.txt").read_bytes()
    target = cache_root() / f"base-{_digest(spec, _python().encode())}"
    _prune(target)
    if not (target / ".complete").is_file():
        log(f"building the shared base venv {target} (torch; about a minute from this machine's disk)")
    return _build(target, lambda venv: _pip(venv, "-r", str(REQUIREMENTS / "base.txt")))


def _prune(target: Path) -> None:
    """Remove cache entries of the same venv built from other inputs (each is gigabytes)."""
    prefix = target.name.rsplit("-", 1)[0] + "-"
    for other in target.parent.glob(prefix + "*"):
        rest = other.name[len(prefix) :]
        if other != target and other.is_dir() and re.fullmatch(r"[0-9a-f]{16}", rest):
            log(f"removing the stale cache entry {other}")
            shutil.rmtree(other, ignore_errors=True)


def _link_base(venv: Path, base: Path) -> None:
    (_site_packages(venv) / "_wideep_engine_base.pth").write_text(str(_site_packages(base)) + "\n")


def pair_venv(pair: str) -> Path:
    match = PAIR_RE.match(pair)
    if not match:
        raise SystemExit(f"engines: {pair!r} is not dynamo-<version>+sglang-<version>")
    requirements = REQUIREMENTS / f"{pair}.txt"
    if not requirements.is_file():
        raise SystemExit(f"engines: {requirements} is missing; run: python scripts/engines.py discover {pair}")
    base = base_venv()
    target = cache_root() / f"{pair}-{_digest(requirements.read_bytes(), base.name.encode())}"
    _prune(target)
    if (target / ".complete").is_file():
        return target
    log(f"building {target}")

    def populate(venv: Path) -> None:
        _link_base(venv, base)
        # --no-deps throughout: the file lists the whole closure, nothing else is pulled in.
        _pip(venv, "--no-deps", "-r", str(requirements))

    return _build(target, populate)


def generate(pair: str, out_dir: Path) -> None:
    """Write the pair's two catalogue files into out_dir. A venv's contents are fixed by its key,
    so the output is a function of (venv, generator): kept in the venv and reused until either changes."""
    venv = pair_venv(pair)
    made = venv / f".catalogue-{_digest(GENERATOR.read_bytes())}"
    if not made.is_dir():
        work = Path(tempfile.mkdtemp(prefix=".catalogue.", dir=venv))
        proc = subprocess.run([str(venv / "bin" / "python"), str(GENERATOR), str(work)], capture_output=True, text=True, check=False)
        if proc.returncode:
            shutil.rmtree(work, ignore_errors=True)
            raise SystemExit(f"engines: catalogue of {pair} failed:\n{proc.stderr[-4000:]}")
        for old in venv.glob(".catalogue-*"):
            shutil.rmtree(old, ignore_errors=True)
        work.rename(made)
    out_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(made.glob("*.json")):
        shutil.copyfile(source, out_dir / source.name)
        document = json.loads(source.read_text())
        sys.stdout.write(f"{out_dir / source.name}: {len(document['options'])} options, {len(document['env']['read'])} env names\n")


def cmd_check(pairs: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for pair in pairs:
            generate(pair, Path(tmp))
        stale = []
        for fresh in sorted(Path(tmp).glob("*.json")):
            committed = CATALOGUE / fresh.name
            if not committed.is_file() or json.loads(committed.read_text()) != json.loads(fresh.read_text()):
                stale.append(fresh.name)
    if stale:
        sys.stderr.write(f"engines check: FAILED: engines/catalogue/{', '.join(stale)} differ from what the released packages give; run: make catalogue\n")
        return 1
    sys.stdout.write(f"engines check: the committed catalogue equals a fresh generation for {', '.join(pairs)}\n")
    return 0


def cmd_discover(pair: str) -> int:
    """Install the pair's wheels with --no-deps, then add, one import error at a time, the
    distribution that is missing, pinned as sglang / ai-dynamo pin it; write the closure."""
    match = PAIR_RE.match(pair)
    if not match:
        raise SystemExit(f"engines: {pair!r} is not dynamo-<version>+sglang-<version>")
    base = base_venv()
    seeds = [f"sglang=={match['sglang']}", f"ai-dynamo=={match['dynamo']}", f"ai-dynamo-runtime=={match['dynamo']}", "packaging"]
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([_python(), "-m", "venv", str(venv)], check=True)
        _link_base(venv, base)
        _pip(venv, "--no-deps", *seeds)
        py = str(venv / "bin" / "python")
        for _attempt in range(120):
            proc = subprocess.run([py, "-c", "import dynamo.sglang.args"], capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                break
            wanted = re.search(r"(?:ImportError: |The ')(\S+?)'? (?:distribution was not found and )?is required", proc.stderr)
            missing = re.search(r"No module named '([^'.]+)", proc.stderr)
            if wanted:
                requirement = wanted.group(1)
            elif missing:
                requirement = _pinned(py, DISTRIBUTION_OF.get(missing.group(1), missing.group(1)))
            else:
                raise SystemExit(f"engines discover: import failed for a reason other than a missing package:\n{proc.stderr[-3000:]}")
            log(f"+ {requirement}")
            _pip(venv, "--no-deps", requirement)
        else:
            raise SystemExit("engines discover: gave up after 120 packages")
        frozen = subprocess.run([py, "-m", "pip", "freeze", "--local"], capture_output=True, text=True, check=True).stdout
    lines = sorted(line for line in frozen.splitlines() if line and not line.startswith("-e"))
    header = [
        f"# The import closure of `dynamo.sglang.args` for {pair}: the released wheels (--no-deps) and",
        "# exactly what importing them needed, found by `python scripts/engines.py discover`. torch and",
        "# torchvision come from the shared base venv (base.txt).",
    ]
    (REQUIREMENTS / f"{pair}.txt").write_text("\n".join(header + lines) + "\n")
    sys.stdout.write(f"{REQUIREMENTS / f'{pair}.txt'}: {len(lines)} distributions\n")
    return 0


def _pinned(py: str, distribution: str) -> str:
    """distribution with the version specifier sglang or ai-dynamo declare for it, if any."""
    code = (
        "import importlib.metadata as m, sys\n"
        "from packaging.requirements import Requirement\n"
        "want = sys.argv[1].lower().replace('_', '-')\n"
        "for dist in ('sglang', 'ai-dynamo', 'ai-dynamo-runtime'):\n"
        "    for text in m.requires(dist) or []:\n"
        "        r = Requirement(text)\n"
        "        if r.name.lower().replace('_', '-') == want and (r.marker is None or r.marker.evaluate({'extra': 'sglang'})):\n"
        "            print(want + str(r.specifier)); sys.exit(0)\n"
        "print(want)\n"
    )
    return subprocess.run([py, "-c", code, distribution], capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pairs")
    for name in ("venv", "catalogue"):
        sub.add_parser(name).add_argument("pairs", nargs="*")
    sub.add_parser("check").add_argument("pairs", nargs="*")
    sub.add_parser("discover").add_argument("pair")
    options = parser.parse_args()
    if options.command == "pairs":
        sys.stdout.write("\n".join(recipe_pairs()) + "\n")
        return 0
    if options.command == "discover":
        return cmd_discover(options.pair)
    pairs = options.pairs or recipe_pairs()
    if options.command == "venv":
        for pair in pairs:
            sys.stdout.write(f"{pair} {pair_venv(pair) / 'bin' / 'python'}\n")
        return 0
    if options.command == "catalogue":
        for pair in pairs:
            generate(pair, CATALOGUE)
        return 0
    return cmd_check(pairs)


if __name__ == "__main__":
    sys.exit(main())
