# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""`wideep`: the collection's playbooks from the terminal, with live progress and typed output.

Exit codes: 0 success, 1 a run failed (or `status` found the deployment unhealthy or drifted),
2 invalid input (bad arguments, an inventory that does not exist or names no trays, the plan's
errors): nothing was changed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.progress import Progress as Bars
from rich.table import Table
from rich.text import Text

from . import __version__, api
from ._collection import collection_dir, playbooks
from .errors import InvalidInputError, RunFailedError, WideepError
from .events import Event, PlayStart, Progress, TaskEnd, TaskStart, Transfer
from .results import Plan, Problem, Result, Status, to_dict

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
# Commands with their own handler; every other playbook of the collection becomes a command of
# its name (logs, bench, ... as they land).
COVERED = {"site", "provision", "stage", "serve", "validate", "render", "status", "teardown"}
STATUS_STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "unreachable": "bold red", "skipped": "dim"}


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


# ------------------------------------------------------------------ live progress


class LiveView:
    """hosts x tasks (each host's current task and counters) and bytes per tray, live.

    On a terminal: a rich Live display on stderr. Elsewhere (CI logs, pipes): one line per play,
    per changed/failed task and per 10% of a transfer, so a log still tells the story."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.hosts: dict[str, dict[str, Any]] = {}
        self.play = ""
        self.transfers = Bars(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False
        )
        self._transfer_ids: dict[str, Any] = {}
        self._printed_decile: dict[str, int] = {}
        self.live: Live | None = Live(console=console, refresh_per_second=4, transient=False) if console.is_terminal else None
        self.started = time.monotonic()

    def __enter__(self) -> LiveView:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        if isinstance(event, PlayStart):
            self.play = event.play
            if self.live is None:
                self.console.print(f"PLAY {event.play}")
        elif isinstance(event, TaskStart):
            row = self._row(event.host)
            row["task"], row["state"] = event.task, "running"
        elif isinstance(event, TaskEnd):
            row = self._row(event.host)
            row["task"], row["state"] = event.task, event.status
            row[event.status if not event.ignored else "ignored"] = row.get(event.status, 0) + 1
            if self.live is None and event.status in ("changed", "failed", "unreachable") and not event.ignored:
                self.console.print(f"  {event.host}: {event.task}: {event.status}" + (f": {event.message}" if event.message else ""))
        elif isinstance(event, Transfer):
            self._transfer(event)
        elif isinstance(event, Progress):
            row = self._row(event.host)
            row["task"], row["state"] = f"{event.task}: {event.message}", "running"
            if self.live is None:
                self.console.print(f"  {event.host}: {event.message}")
        if self.live is not None:
            self.live.update(self._render())

    def _row(self, host: str) -> dict[str, Any]:
        return self.hosts.setdefault(host, {"task": "", "state": "", "ok": 0, "changed": 0, "failed": 0, "skipped": 0, "unreachable": 0})

    def _transfer(self, event: Transfer) -> None:
        key = f"{event.host} {event.role or event.task}"
        if key not in self._transfer_ids:
            self._transfer_ids[key] = self.transfers.add_task(key, total=event.bytes_total or None)
        self.transfers.update(self._transfer_ids[key], completed=event.bytes_done, total=event.bytes_total or None)
        if self.live is None:
            decile = int(event.fraction * 10)
            if decile != self._printed_decile.get(key):
                self._printed_decile[key] = decile
                eta = f", ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
                self.console.print(
                    f"  {key}: {event.bytes_done / 2**20:,.0f}/{event.bytes_total / 2**20:,.0f} MiB ({100 * event.fraction:.0f}%), "
                    f"{event.rate_bytes_per_s / 1e6:.1f} MB/s{eta}"
                )

    def _render(self) -> Group:
        table = Table(title=f"{self.play} ({time.monotonic() - self.started:.0f} s)", title_justify="left", expand=False)
        for column in ("host", "task", "ok", "changed", "failed", "skipped"):
            table.add_column(column, justify="right" if column in ("ok", "changed", "failed", "skipped") else "left")
        for host, row in sorted(self.hosts.items()):
            state = Text(row["task"][:60], style=STATUS_STYLE.get(row["state"], ""))
            table.add_row(host, state, str(row["ok"]), str(row["changed"]), str(row["failed"] + row["unreachable"]), str(row["skipped"]))
        parts: list[Any] = [table]
        if self._transfer_ids:
            parts.append(self.transfers)
        return Group(*parts)


# ------------------------------------------------------------------ output


def _summary(console: Console, result: Result) -> None:
    table = Table(title=f"{result.playbook}: {'ok' if result.ok else 'FAILED'} in {result.duration_s:.1f} s", title_justify="left")
    for column in ("host", "ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored"):
        table.add_column(column, justify="left" if column == "host" else "right")
    for host, recap in result.hosts.items():
        style = "red" if recap.failed or recap.unreachable else ("yellow" if recap.changed else "")
        table.add_row(host, *(str(getattr(recap, c)) for c in ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")), style=style)
    console.print(table)
    for failure in result.failures:
        console.print(f"[bold red]FAILED[/] {failure.host}: {failure.task}: {failure.message}", markup=True, highlight=False)
    console.print(f"artifacts: {result.artifacts}", highlight=False)


def _problems(console: Console, problems: Sequence[Problem], title: str) -> None:
    """One problem a line (as the playbooks print them), so a narrow terminal or a log reads them whole."""
    console.print(title, style="bold", highlight=False)
    for p in problems:
        style = "red" if p.severity == "error" else "yellow"
        console.print(Text.assemble((f"[{p.code}]", style), f" {p.where}: {p.variable}: {p.message}. ", ("Fix: ", "bold"), p.fix), soft_wrap=True)


def _plan_table(console: Console, plan: Plan, show_argv: bool) -> None:
    console.print(
        f"recipe [bold]{plan.recipe}[/] ({plan.engine} engine, SGLang {plan.engine_versions.get('sglang')} / Dynamo "
        f"{plan.engine_versions.get('dynamo')}), model {plan.served_model_name}, frontend {plan.frontend_url}",
        highlight=False,
    )
    table = Table(title_justify="left")
    for column in ("tray", "address", "worker", "role", "rank", "launch"):
        table.add_column(column, no_wrap=True)
    table.add_column("containers", overflow="fold")
    for name, tray in plan.trays.items():
        table.add_row(
            name,
            tray.address or "",
            tray.worker or "",
            tray.role or "",
            "" if tray.rank is None else f"{tray.rank}/{tray.nnodes}",
            "-" if tray.worker is None else ("yes" if tray.launch else "no"),
            ", ".join(c["name"] for c in tray.containers) or (tray.note or "-"),
        )
    console.print(table)
    if show_argv:
        for name, tray in plan.trays.items():
            if tray.argv:
                console.print(f"[bold]{name}[/]: " + " ".join(tray.argv), highlight=False, soft_wrap=True)
    if plan.warnings:
        _problems(console, plan.warnings, f"{len(plan.warnings)} warning(s) (silence each with gb200_silence_warnings)")


def _status_table(console: Console, status: Status) -> None:
    table = Table(
        title=f"frontend {status.frontend_url}: {'healthy' if status.frontend_healthy else 'not healthy' if status.frontend_healthy is False else 'no answer'}",
        title_justify="left",
    )
    for column in ("worker", "role", "healthy", "ranks running", "matches plan", "frontend lists it"):
        table.add_column(column)
    for w in status.workers:
        table.add_row(
            w.name,
            w.role,
            "yes" if w.healthy else "NO",
            f"{','.join(map(str, w.ranks_running)) or '-'} of {','.join(map(str, w.ranks_planned))}",
            "yes" if w.matches_plan else "NO",
            {True: "yes", False: "NO", None: "?"}[w.registered],
            style="" if w.healthy else "red",
        )
    console.print(table)
    for line in status.drift:
        console.print(f"[red]DRIFT[/] {line}", highlight=False)


# ------------------------------------------------------------------ arguments


def _extravars(values: Sequence[str] | None) -> dict[str, Any]:
    """-e as ansible-playbook takes it: KEY=VALUE pairs, a YAML/JSON mapping, or @FILE."""
    out: dict[str, Any] = {}
    for value in values or []:
        if value.startswith("@"):
            path = Path(value[1:])
            if not path.is_file():
                raise UsageError(f"-e {value}: {path} does not exist")
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        elif value.lstrip().startswith("{"):
            data = yaml.safe_load(value)
        else:
            data = {}
            for pair in shlex.split(value):
                key, sep, val = pair.partition("=")
                if not sep or not key:
                    raise UsageError(f"-e {value!r}: expected KEY=VALUE, a YAML/JSON mapping or @FILE")
                data[key] = val
        if not isinstance(data, dict):
            raise UsageError(f"-e {value!r}: not a mapping")
        out.update(data)
    return out


def _common(parser: argparse.ArgumentParser, *, inventory: bool = True, limit: bool = False, tags: bool = False) -> None:
    if inventory:
        parser.add_argument("-i", "--inventory", action="append", required=True, metavar="PATH", help="inventory file or directory (repeatable)")
    parser.add_argument("-e", "--extra-vars", action="append", metavar="VARS", help="KEY=VALUE, a YAML/JSON mapping, or @FILE (repeatable)")
    if limit:
        parser.add_argument("-l", "--limit", help="only these hosts/groups (Ansible pattern)")
    if tags:
        parser.add_argument("-t", "--tags", help="only tasks with these tags (comma-separated)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (no live display)")
    parser.add_argument("--artifacts", metavar="DIR", help="ansible-runner artifacts folder (default ~/.local/state/wideep-gb200/runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wideep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wideep-gb200 {__version__} (collection: {collection_dir()})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("plan", help="the validated plan: every tray's worker, rank, argv, env, containers (no tray contacted)")
    _common(p)
    p.add_argument("--argv", action="store_true", help="also print each tray's full command")
    _common(sub.add_parser("validate", help="check the inventory: every problem at once, each with its fix (no tray contacted)"))
    p = sub.add_parser("render", help="write DIR/plan.json and one launch script per tray (no tray contacted)")
    _common(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="render directory (owned by render: replaced whole)")
    p = sub.add_parser("deploy", help="run site (provision -> stage -> serve), provision, stage or serve")
    p.add_argument("playbook", nargs="?", default="site", choices=api.DEPLOY_PLAYBOOKS)
    _common(p, limit=True, tags=True)
    p.add_argument("--check", action="store_true", help="check mode: report what would change")
    p = sub.add_parser("status", help="per worker: healthy, ranks running, matches the plan; the frontend URL (exit 1 when not healthy)")
    _common(p, limit=True)
    p = sub.add_parser("teardown", help="remove every container the collection started (weights and caches stay)")
    _common(p, limit=True)
    p = sub.add_parser("demo", help="from a checkout: the emulated GB200 cluster, deployed with live progress, then one completion")
    p.add_argument("--root", default=".", help="the repository checkout (default: the current directory)")
    p.add_argument("--down", action="store_true", help="remove the emulated cluster instead")
    for name in ("prefill-workers", "prefill-nodes", "decode-workers", "decode-nodes"):
        p.add_argument(f"--{name}", type=int, help=f"topology (emulated/cluster.py up --{name})")
    p.add_argument("--json", action="store_true")
    p.add_argument("--artifacts", metavar="DIR")
    sub.add_parser("playbooks", help="list the collection's playbooks")
    for name in playbooks():
        if name in COVERED or name in sub.choices:
            continue
        p = sub.add_parser(name, help=f"run the collection's {name} playbook (wideep.gb200.{name})")
        _common(p, limit=True, tags=True)
        p.add_argument("--check", action="store_true")
        p.set_defaults(generic_playbook=name)
    return parser


# ------------------------------------------------------------------ commands


def _run_with_view(args: argparse.Namespace, err: Console, call: Callable[[Callable[[Event], None] | None], Any]) -> Any:
    if args.json:
        return call(None)
    with LiveView(err) as view:
        return call(view)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for usage errors, 0 for --help
        return int(exc.code or 0)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return _dispatch(args, out, err)
    except UsageError as exc:
        return _fail(args, err, EXIT_INVALID, "usage", str(exc))
    except InvalidInputError as exc:
        if getattr(args, "json", False):
            _print_json({"ok": False, "error": "invalid_input", "problems": to_dict(exc.problems)}, indent=2)
        else:
            _problems(err, exc.problems, f"{len(exc.problems)} problem(s) in the input; nothing was changed")
        return EXIT_INVALID
    except RunFailedError as exc:
        if getattr(args, "json", False):
            _print_json({"error": "run_failed", **exc.result.to_dict()}, indent=2)
        else:
            _summary(err, exc.result)
        return EXIT_FAILED
    except WideepError as exc:
        return _fail(args, err, EXIT_FAILED, "error", str(exc))
    except KeyboardInterrupt:
        return 130


def _print_json(data: Any, indent: int | None = None) -> None:
    """--json output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=indent) + "\n")


def _fail(args: argparse.Namespace, err: Console, code: int, kind: str, message: str) -> int:
    if getattr(args, "json", False):
        _print_json({"ok": False, "error": kind, "message": message})
    else:
        err.print(f"wideep: {message}", style="red", highlight=False)
    return code


def _dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:  # one return per command
    if args.command == "playbooks":
        for name in playbooks():
            out.print(name)
        return EXIT_OK
    if args.command == "demo":
        return _demo(args, out, err)
    extravars = _extravars(args.extra_vars)
    inventory = args.inventory
    if args.command in ("plan", "validate"):
        plan = api.plan(inventory, extravars, artifacts_dir=args.artifacts)
        if args.json:
            _print_json(plan.to_dict() if args.command == "plan" else {"ok": True, "warnings": to_dict(plan.warnings)}, indent=2)
        elif args.command == "plan":
            _plan_table(out, plan, args.argv)
        else:
            trays = sum(len(w.hosts) for w in plan.workers)
            out.print(f"valid: recipe {plan.recipe}, {len(plan.workers)} worker(s) on {trays} tray(s), {len(plan.warnings)} warning(s)")
            if plan.warnings:
                _problems(out, plan.warnings, "warnings (silence each with gb200_silence_warnings)")
        return EXIT_OK
    if args.command == "status":
        status = _run_with_view(args, err, lambda on: api.status(inventory, args.limit, extravars, on, artifacts_dir=args.artifacts))
        if args.json:
            _print_json({**to_dict(status), "result": status.result.to_dict() | {"plan": None}}, indent=2)
        else:
            _status_table(out, status)
        return EXIT_OK if status.healthy else EXIT_FAILED
    if args.command == "render":
        result = _run_with_view(args, err, lambda on: api.render(inventory, args.output, extravars, on_event=on, artifacts_dir=args.artifacts))
    elif args.command == "deploy":
        result = _run_with_view(
            args, err, lambda on: api.deploy(inventory, args.playbook, args.limit, args.tags, extravars, on, check=args.check, artifacts_dir=args.artifacts)
        )
    elif args.command == "teardown":
        result = _run_with_view(args, err, lambda on: api.teardown(inventory, args.limit, extravars, on, artifacts_dir=args.artifacts))
    else:
        result = _run_with_view(
            args,
            err,
            lambda on: api.run(args.generic_playbook, inventory, args.limit, args.tags, extravars, on, check=args.check, artifacts_dir=args.artifacts),
        )
    if args.json:
        _print_json(result.to_dict(), indent=2)
    else:
        _summary(out, result)
    return EXIT_OK


def _demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    root = Path(args.root).resolve()
    cluster = root / "emulated" / "cluster.py"
    if not cluster.is_file():
        raise UsageError(f"{root} is not a wideep.gb200 checkout (no emulated/cluster.py): run `wideep demo` from the repository root, or pass --root")
    if args.down:
        subprocess.run([sys.executable, str(cluster), "down"], check=True, cwd=root)
        return EXIT_OK
    topology = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k.endswith(("_workers", "_nodes")) and v is not None]
    for step in (["install-engine"], ["up", *topology]):
        done = subprocess.run([sys.executable, str(cluster), *step], cwd=root, check=False, stdout=sys.stderr if args.json else None)
        if done.returncode != 0:
            raise WideepError(f"emulated/cluster.py {' '.join(step)} failed (exit {done.returncode})")
    inventory = [root / "build" / "emulated" / "hosts.yml", root / "inventories" / "emulated"]
    result = _run_with_view(args, err, lambda on: api.deploy(inventory, "site", on_event=on, artifacts_dir=args.artifacts))
    plan = result.plan
    if plan is None or not plan.frontend_url:
        raise WideepError("the site run returned no plan with a frontend")
    answer = _completion(plan.frontend_url, plan.served_model_name)
    if args.json:
        _print_json({**result.to_dict(), "frontend_url": plan.frontend_url, "completion": answer}, indent=2)
        return EXIT_OK
    _summary(err, result)
    out.print(f"frontend: {plan.frontend_url}")
    out.print(f"completion ({answer['usage']['completion_tokens']} tokens): {answer['choices'][0]['message']['content']}")
    return EXIT_OK


def _completion(url: str, model: str) -> dict[str, Any]:
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Explain wide expert parallelism in one sentence."}], "max_tokens": 24}
    ).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # the plan's frontend (http)
        answer: dict[str, Any] = json.load(response)
    return answer


if __name__ == "__main__":
    sys.exit(main())
