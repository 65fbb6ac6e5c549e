# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""Ask a Python environment which engine it holds and whether its own parser accepts argvs.

Runs with the environment's own interpreter and nothing but the standard library and the
engine: inside the serving image on a tray (preflight, `docker run --rm IMAGE python3 -`),
and in the engine venvs of the test suite (tests/contract). It prints one JSON document:

    {"versions": {"sglang": "0.5.21", "ai-dynamo": "1.6.1", "ai-dynamo-runtime": "1.6.1"},
     "parsed": {"<name>": {"ok": true, "error": null, "warnings": [...]}}}

With --parse FILE ({"<name>": [argv after `python3 -m dynamo.sglang`], ...}; "-" for stdin)
each argv goes through Dynamo's real `dynamo.sglang.args.parse_args`, which parses Dynamo's
own flags and hands the rest to a parser built by SGLang's `ServerArgs.add_cli_args`.

The GPU boundary: `ServerArgs.from_cli_args` runs `ServerArgs.__post_init__`, which probes
the accelerator (and fails on a machine without one). The probe replaces it with a stop that
ends the parse right there, so everything before it (argparse, Dynamo's own checks) is the
engine's real code and nothing after it runs. No GPU, network or model weights are needed:
--model-path must name a local folder (a config.json is enough; --model-path-override
points every argv at one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import io
import json
import logging
import os
import re
import select
import sys
import warnings
from typing import Any

DISTRIBUTIONS = ("sglang", "ai-dynamo", "ai-dynamo-runtime")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class _BoundaryReachedError(Exception):
    """Raised in place of ServerArgs.from_cli_args: parsing got past every flag."""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _stop(_cls: Any, _namespace: Any) -> Any:
    raise _BoundaryReachedError


def parse_all(argvs: dict[str, list[str]], model_path: str | None) -> dict[str, dict[str, Any]]:
    from dynamo.sglang import args as dynamo_args
    from sglang.srt.server_args import ServerArgs

    # The GPU boundary (see the module docstring).
    ServerArgs.from_cli_args = classmethod(_stop)  # type: ignore[assignment,method-assign]
    results: dict[str, dict[str, Any]] = {}
    for name, argv in argvs.items():
        argv = list(argv)
        if model_path is not None and "--model-path" in argv:
            argv[argv.index("--model-path") + 1] = model_path
        stderr = io.StringIO()
        collect = _Collect()
        logging.getLogger().addHandler(collect)
        result: dict[str, Any] = {"ok": False, "error": None, "warnings": []}
        try:
            with contextlib.redirect_stderr(stderr), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    asyncio.run(dynamo_args.parse_args(argv))
                    result["error"] = "parse_args returned without reaching ServerArgs.from_cli_args"
                except _BoundaryReachedError:
                    result["ok"] = True
            result["warnings"] = [str(w.message) for w in caught if "deprecat" in str(w.message).lower()]
        except SystemExit as exc:
            lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
            result["error"] = lines[-1] if lines else f"exit {exc.code}"
        except Exception as exc:  # any engine-side refusal is a result to report
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            logging.getLogger().removeHandler(collect)
        seen = result["warnings"] + [line for line in collect.lines + stderr.getvalue().splitlines() if "deprecat" in line.lower()]
        result["warnings"] = list(dict.fromkeys(_ANSI.sub("", line).strip() for line in seen))
        results[name] = result
    return results


def emit(text: str) -> None:
    """Write all of text to stdout. With PYTHONUNBUFFERED (set here, and often in images) stdout
    has no buffer to retry a partial write, and after the engine's parse a write to a pipe whose
    reader is slower than us came back short and silently lost the rest (64 KiB of a 100 KiB
    answer, Dynamo 1.6.1 + SGLang 0.5.21): so write the bytes ourselves until none are left."""
    sys.stdout.flush()
    view = memoryview(text.encode())
    while view:
        try:
            view = view[os.write(1, view) :]
        except BlockingIOError:  # a stdout left non-blocking: wait until the pipe has room
            select.select([], [1], [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--parse", metavar="FILE", help="JSON {name: argv}; '-' reads stdin")
    parser.add_argument("--parse-json", metavar="JSON", help="the same JSON as an argument (when stdin carries this script)")
    parser.add_argument("--model-path-override", metavar="DIR", help="local folder used as every argv's --model-path")
    options = parser.parse_args()
    out: dict[str, Any] = {"versions": versions()}
    argvs: dict[str, list[str]] | None = None
    if options.parse_json:
        argvs = json.loads(options.parse_json)
    elif options.parse:
        with open(0 if options.parse == "-" else options.parse, encoding="utf-8") as handle:
            argvs = json.load(handle)
    if argvs:
        out["parsed"] = parse_all(argvs, options.model_path_override)
    emit(json.dumps(out, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
