"""wideep.gb200.model_weights_manifest's action: a source unchanged since its cache was written is
answered from one shell read (find + the cache + the indexes), with the module's own answer;
anything the module would hash, write or refuse goes to the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ansible_module import run_module, run_module_file

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("changed", "files", "digest", "total_bytes", "hashed_bytes")


def _source(path: Path) -> Path:
    subprocess.run([sys.executable, str(ROOT / "emulated" / "make_model.py"), str(path), "--shards", "4", "--shard-bytes", "20000"], check=True)
    (path / "sub dir" / "deeper").mkdir(parents=True)
    (path / "sub dir" / "z last.txt").write_text("z")  # a directory's files come before its subdirectories
    (path / "sub dir" / "deeper" / "a.txt").write_text("a")
    (path / "zz-top.txt").write_text("top")  # the top's files come before every subdirectory
    (path / ".wideep-skip").write_text("never listed")
    return path


def test_an_unchanged_source_is_answered_from_its_cache_as_the_module_would(tmp_path: Path) -> None:
    source = _source(tmp_path / "model src")
    args: dict[str, Any] = {"path": str(source), "cache": str(tmp_path / "cache.json")}
    rc, first, output = run_module("model_weights_manifest", json.dumps(args))
    assert rc == 0 and "invocation" in first and first["changed"] and first["hashed_bytes"] > 0, output  # hashed, cache written
    rc, action, output = run_module("model_weights_manifest", json.dumps(args))
    assert rc == 0 and "invocation" not in action, output  # the shell read answered
    module = run_module_file("model_weights_manifest", args, tmp_path)
    assert {k: action[k] for k in KEYS} == {k: module[k] for k in KEYS}
    assert action["changed"] is False and action["hashed_bytes"] == 0
    assert [f["path"] for f in action["files"]][-3:] == ["zz-top.txt", "sub dir/z last.txt", "sub dir/deeper/a.txt"]
    rc, checked, output = run_module("model_weights_manifest", json.dumps(args), "--check")
    assert rc == 0 and "invocation" not in checked and checked["files"] == action["files"], output

    # a new mtime: the module hashes that file again
    shard = max(action["files"], key=lambda f: f["size"])
    os.utime(source / shard["path"], ns=(1, 2))
    rc, touched, output = run_module("model_weights_manifest", json.dumps(args))
    assert rc == 0 and "invocation" in touched and touched["hashed_bytes"] == shard["size"] and touched["changed"], output
    # a symlink in the source, or no cache: the module's
    (source / "link.txt").symlink_to(source / "zz-top.txt")
    rc, linked, output = run_module("model_weights_manifest", json.dumps(args))
    assert rc == 0 and "invocation" in linked, output
    (source / "link.txt").unlink()
    rc, uncached, output = run_module("model_weights_manifest", json.dumps({"path": str(source)}))
    assert rc == 0 and "invocation" in uncached, output
    # an index naming a shard the source lacks fails, named, whichever answers
    index = source / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["lost.weight"] = "model-99999-of-99999.safetensors"
    index.write_text(json.dumps(data))
    rc, refused, output = run_module("model_weights_manifest", json.dumps(args))
    assert rc != 0 and "model-99999-of-99999.safetensors" in refused["msg"], output
    # a source that is not a directory: the module says so
    rc, missing, output = run_module("model_weights_manifest", json.dumps({**args, "path": str(tmp_path / "nowhere")}))
    assert rc != 0 and "is not a directory" in missing["msg"], output
