# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Write the argument contract of the SGLang and Dynamo installed in THIS interpreter.

Run by `scripts/engines.py catalogue` with the python of an engine venv (the released
`sglang` and `ai-dynamo` wheels from PyPI, see engines/requirements/). Standard library only,
besides the engine itself. Writes two JSON documents into OUT_DIR:

- sglang-<version>.json: every option of the parser that SGLang's own
  `ServerArgs.add_cli_args(argparse.ArgumentParser())` builds (imported, not read), and the
  environment variables the package's source reads.
- dynamo-<version>.json: the options Dynamo's `dynamo.sglang.args.parse_args` adds on top of
  SGLang's (found by running it on a minimal argv and recording every parser it consults),
  the changes it makes to SGLang's options, and the environment variables Dynamo reads.

Environment variables cannot be imported: they are read from the package source with `ast`
(and, for Dynamo's compiled runtime, from the string table of its shared libraries). A name
counts as read when it appears as a whole string constant or as an attribute (`envs.NAME`)
anywhere in the package; names only declared in SGLang's `Envs` class are listed apart.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import importlib.metadata
import io
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ENV_RE = re.compile(r"^(SGLANG|SGL|DYN)_[A-Z0-9_]+$")
ENV_PREFIX_RE = re.compile(r"^(SGLANG|SGL|DYN)_[A-Z0-9_]*$")
BINARY_ENV_RE = re.compile(rb"(?<![A-Z0-9_])DYN_[A-Z0-9_]{2,}")
SKIP_ACTIONS = ("_HelpAction", "_VersionAction")
MODEL_CONFIG = '{"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3"}'  # all a parse reads of the model


def _type_name(kind: Any) -> str | None:
    if kind is None:
        return None
    if kind in (int, float, str):
        return kind.__name__
    return "other"


def _says_deprecated(text: str, flags: list[str]) -> bool:
    """The help says THIS flag is deprecated (not that it replaces a deprecated thing)."""
    lower = text.lower()
    if re.match(r"^\W*deprecated", lower) or re.match(r"^(note:\s*)?this (flag|argument|option) is deprecated", lower):
        return True
    return any(f"{flag} is deprecated" in lower or f"{flag} will be deprecated" in lower for flag in flags)


def _option(action: argparse.Action) -> dict[str, Any]:
    kind = type(action).__name__
    nargs: Any = action.nargs
    if nargs is None and kind in ("_StoreTrueAction", "_StoreFalseAction", "_StoreConstAction", "_CountAction", "_AppendConstAction"):
        nargs = 0
    deprecated: dict[str, Any] | None = None
    text = " ".join((action.help or "").split())
    if "deprecat" in kind.lower():
        refuses = getattr(action, "error_message", None)
        deprecated = {"refused": refuses is not None, "message": refuses or text}
    elif _says_deprecated(text, action.option_strings):
        deprecated = {"refused": False, "message": text}
    # Sorted: some choice lists come from sets or from a Rust map (Dynamo's parser names), whose
    # order changes from one process to the next; the order means nothing to argparse.
    choices = None if action.choices is None else sorted(str(c) for c in action.choices)
    return {
        "dest": action.dest,
        "aliases": list(action.option_strings),
        "action": kind,
        "nargs": nargs,
        "type": _type_name(action.type),
        "choices": choices,
        "deprecated": deprecated,
    }


def _options(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for action in parser._actions:
        if type(action).__name__ in SKIP_ACTIONS:
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                out[flag] = _option(action)
    return dict(sorted(out.items()))


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _env_in_source(roots: list[Path]) -> dict[str, Any]:
    read: set[str] = set()
    declared: set[str] = set()
    prefixes: set[str] = set()
    rewrites_sgl = False
    for root in roots:
        for path in _python_files(root):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_RE.match(node.value):
                    read.add(node.value)
                elif isinstance(node, ast.Attribute) and ENV_RE.match(node.attr):
                    read.add(node.attr)
                elif isinstance(node, ast.JoinedStr) and node.values:
                    head = node.values[0]
                    if isinstance(head, ast.Constant) and isinstance(head.value, str) and ENV_PREFIX_RE.match(head.value):
                        prefixes.add(head.value)
                elif isinstance(node, ast.ClassDef) and node.name == "Envs":
                    for stmt in node.body:
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                        declared.update(t.id for t in targets if isinstance(t, ast.Name) and ENV_RE.match(t.id))
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "replace"
                    and [a.value for a in node.args[:2] if isinstance(a, ast.Constant)] == ["SGL_", "SGLANG_"]
                ):
                    rewrites_sgl = True
    return {
        "read": sorted(read),
        "declared_unread": sorted(declared - read),
        "dynamic_prefixes": sorted(prefixes),
        "sgl_prefix_rewritten": rewrites_sgl,
    }


def _deprecated_env(environ_py: Path) -> dict[str, str | None]:
    """old name -> new name (None: no replacement) from SGLang's deprecation helpers in environ.py."""
    out: dict[str, str | None] = {}
    if not environ_py.is_file():
        return out
    tree = ast.parse(environ_py.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""
        strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        keywords = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)}
        if name == "_print_deprecated_env" and len(strings) >= 2:
            out[strings[1]] = strings[0]  # (new_name, old_name)
        elif name == "_warn_deprecated_env_to_cli_flag" and strings:
            out.setdefault(strings[0], None)
        elif "deprecated_name" in keywords and isinstance(keywords["deprecated_name"], str):
            owner = _assigned_name(tree, node)
            if owner:
                out[keywords["deprecated_name"]] = owner
    # A registry dict literal {"OLD": _Deprecation(new_name="NEW" ...)} (newer releases).
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=False):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and ENV_RE.match(key.value) and isinstance(value, ast.Call):
                    new = [k.value.value for k in value.keywords if k.arg in ("new_name", "new", "replacement") and isinstance(k.value, ast.Constant)]
                    positional = [a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and ENV_RE.match(a.value)]
                    out[key.value] = (new or positional or [None])[0]
    return dict(sorted(out.items()))


def _assigned_name(tree: ast.AST, call: ast.Call) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.value is call:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    return target.id
    return None


def _env_in_binaries(root: Path) -> set[str]:
    names: set[str] = set()
    for path in root.rglob("*.so"):
        for match in BINARY_ENV_RE.findall(path.read_bytes()):
            # A compiled string table packs literals without separators: DYN_ADYN_B -> DYN_A, DYN_B.
            names.update("DYN_" + part for part in match.decode().split("DYN_") if part)
    return {n for n in names if ENV_RE.match(n)}


class _BoundaryReachedError(Exception):
    pass


def _parse_with_dynamo(argv: list[str], model: str) -> bool:
    """True when Dynamo's real parse_args accepts argv (it reaches ServerArgs.from_cli_args)."""
    from dynamo.sglang import args as dynamo_args

    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            asyncio.run(dynamo_args.parse_args(["--model-path", model, *argv]))
    except _BoundaryReachedError:
        return True
    except (SystemExit, Exception):  # any refusal counts
        return False
    return False


def _dynamo_value_checks(sglang_options: dict[str, dict[str, Any]], dynamo_roots: list[Path]) -> dict[str, dict[str, Any]]:
    """SGLang options whose values Dynamo checks itself after argparse (e.g. its own list of
    reasoning parsers): every choice of each option Dynamo's parse_args reads is tried through
    the real parse_args, and the accepted subset recorded when it is smaller."""
    read: set[str] = set()
    for root in dynamo_roots:
        args_py = root / "sglang" / "args.py"
        if args_py.is_file():
            for node in ast.walk(ast.parse(args_py.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "parsed_args":
                    read.add(node.attr)
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as model:
        (Path(model) / "config.json").write_text(MODEL_CONFIG)
        for flag, spec in sglang_options.items():
            if spec["dest"] in read and spec["choices"] and spec["nargs"] in (None, "?") and not spec["deprecated"]:
                accepted = sorted(c for c in spec["choices"] if _parse_with_dynamo([flag, c], model))
                if accepted != spec["choices"]:
                    out[flag] = {"choices": accepted}
    return out


def _dynamo_parsers() -> list[argparse.ArgumentParser]:
    """Every parser Dynamo's parse_args consults on a minimal argv, in call order."""
    from dynamo.sglang import args as dynamo_args
    from sglang.srt.server_args import ServerArgs

    seen: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_known_args

    def recording(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        if all(p is not self for p in seen):
            seen.append(self)
        return original(self, *a, **k)

    def stop(_cls: Any, _namespace: Any) -> Any:
        raise _BoundaryReachedError

    argparse.ArgumentParser.parse_known_args = recording  # type: ignore[method-assign]
    ServerArgs.from_cli_args = classmethod(stop)  # type: ignore[assignment,method-assign]
    with tempfile.TemporaryDirectory() as model:
        (Path(model) / "config.json").write_text(MODEL_CONFIG)
        try:
            asyncio.run(dynamo_args.parse_args(["--model-path", model]))
        except _BoundaryReachedError:
            pass
        finally:
            argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    return seen


def main() -> int:
    out_dir = Path(sys.argv[1])
    import dynamo
    import sglang
    from sglang.srt.server_args import ServerArgs

    sglang_version = importlib.metadata.version("sglang")
    dynamo_version = importlib.metadata.version("ai-dynamo")
    pure = argparse.ArgumentParser()
    ServerArgs.add_cli_args(pure)
    sglang_options = _options(pure)
    sglang_root = Path(sglang.__file__).parent
    sglang_env = _env_in_source([sglang_root])
    sglang_env["deprecated"] = _deprecated_env(sglang_root / "srt" / "environ.py")

    parsers = _dynamo_parsers()
    stages = [_options(p) for p in parsers]
    dynamo_options: dict[str, dict[str, Any]] = {}
    overrides: dict[str, dict[str, Any]] = {}
    for stage in stages:
        for flag, spec in stage.items():
            if flag not in sglang_options:
                dynamo_options.setdefault(flag, spec)
            elif spec["choices"] != sglang_options[flag]["choices"]:
                overrides[flag] = {"choices": spec["choices"]}
    dynamo_roots = [Path(p) for p in dynamo.__path__]
    for flag, override in _dynamo_value_checks(sglang_options, dynamo_roots).items():
        overrides.setdefault(flag, {}).update(override)
    dynamo_env = _env_in_source(dynamo_roots)
    compiled = set().union(*(_env_in_binaries(r) for r in dynamo_roots))
    dynamo_env["read"] = sorted(set(dynamo_env["read"]) | compiled)
    one_parser = len(parsers) == 1 and any(f in stages[0] for f in sglang_options)

    common = {"generated_by": "scripts/engines.py catalogue (scripts/engine_catalogue.py)", "python": sys.version.split()[0]}
    documents = {
        f"sglang-{sglang_version}.json": {
            **common,
            "engine": "sglang",
            "version": sglang_version,
            "source": f"sglang=={sglang_version} from PyPI: ServerArgs.add_cli_args(argparse.ArgumentParser()); env read from the package source (ast)",
            "options": sglang_options,
            "env": sglang_env,
        },
        f"dynamo-{dynamo_version}.json": {
            **common,
            "engine": "dynamo",
            "version": dynamo_version,
            "sglang": sglang_version,
            "source": (
                f"ai-dynamo=={dynamo_version} from PyPI: dynamo.sglang.args.parse_args on a minimal argv, every parser it consults recorded; "
                "env read from the package source (ast) and its compiled runtime's string table"
            ),
            "parsing": "one parser for Dynamo and SGLang flags" if one_parser else "Dynamo's flags first (parse_known_args), the rest by SGLang's parser",
            "options": dict(sorted(dynamo_options.items())),
            "sglang_option_overrides": dict(sorted(overrides.items())),
            "env": dynamo_env,
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (out_dir / name).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        sys.stdout.write(f"{out_dir / name}: {len(document['options'])} options, {len(document['env']['read'])} env names\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
