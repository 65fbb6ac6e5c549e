"""`pip install .` gives the wideep_gb200 package, the `wideep` command and the collection itself.

The wheel is built here as pip builds it (hatchling, pyproject.toml) and installed, without its
dependencies, into a fresh virtualenv that borrows them from .venv (a .pth file): the installed
command then runs from another directory with no checkout on sys.path. A full `pip install .`
from PyPI takes minutes and is the README's (run once by hand; see the closing notes).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "ansible_collections/wideep/gb200"


def test_the_wheel_carries_the_package_and_the_collection_and_runs_installed(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    assert wheel.name == f"wideep_gb200-{version}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "playbooks", "plugins", "roles", "recipes", "engines/catalogue", "meta"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    expected = {f"{COLLECTION}/{path}" for path in tracked.stdout.split()} | {f"{COLLECTION}/galaxy.yml", "wideep_gb200/cli.py", "wideep_gb200/py.typed"}
    assert expected <= names, sorted(expected - names)[:10]
    assert not [n for n in names if "__pycache__" in n or n.startswith(("python/", "tests/", "emulated/", f"{COLLECTION}/python"))]
    entry_points = zipfile.ZipFile(wheel).read(f"wideep_gb200-{version}.dist-info/entry_points.txt").decode()
    assert "wideep = wideep_gb200.cli:main" in entry_points

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-deps", str(wheel)], check=True, capture_output=True)
    purelib = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (purelib / "borrowed-deps.pth").write_text("\n".join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]) + "\n")
    assert (purelib / COLLECTION / "playbooks" / "site.yml").is_file()

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTHON")) and k != "VIRTUAL_ENV"}
    # ansible-playbook itself comes from .venv (a dependency, not part of this package).
    env["PATH"] = os.pathsep.join([str(venv / "bin"), str(Path(sys.executable).parent), "/usr/bin:/bin"])
    env["WIDEEP_ARTIFACTS"] = str(tmp_path / "artifacts")
    version_line = subprocess.run([str(venv / "bin" / "wideep"), "--version"], cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert version_line.strip() == f"wideep-gb200 {version} (collection: {purelib / COLLECTION})"
    done = subprocess.run(
        [str(venv / "bin" / "wideep"), "plan", "-i", str(ROOT / "inventories" / "gb200"), "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["trays"]["gb200-p1"]["worker"] == "prefill_0"
    command = json.loads(next((tmp_path / "artifacts").glob("*-validate-*/command")).read_text())
    assert command["command"][-1] == "wideep.gb200.validate"
