# Copyright (c) 2026 wideep.gb200 authors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
"""PNG plots of a benchmark's results.json (matplotlib), and the comparison of two result sets.

    python plots.py plot RESULTS_DIR [OUT_DIR]      pareto.png, ttft_p90.png
    python plots.py compare A_DIR B_DIR OUT_DIR     compare_pareto.png, compare_ttft_p90.png

From Python: plot(results_dir) and compare(a_dir, b_dir, out_dir), each returning the manifest
it writes beside the PNGs (plots.json / compare.json: every plot, its series and how many points
each series drew, read back from the drawn lines).

This file stands alone (standard library + matplotlib, imported when a plot is drawn): the role
runs it with the aiperf venv's Python (scripts/aiperf_venv.sh), which has matplotlib; the
collection's own Python never needs matplotlib.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_JSON = "results.json"
PLOTS_MANIFEST = "plots.json"
COMPARE_MANIFEST = "compare.json"
_MOCKER_SHORT = "MOCKER: these figures measure the plumbing, not GB200 performance"


class PlotError(ValueError):
    """The results cannot be plotted; the message says which file and why."""


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as exc:
        raise PlotError(
            f"matplotlib is not installed for {sys.executable}; run the plots with the aiperf venv's python "
            "(scripts/aiperf_venv.sh prints its aiperf; python is beside it)"
        ) from exc
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def load(results_dir: str | Path) -> dict[str, Any]:
    path = Path(results_dir) / RESULTS_JSON
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlotError(f"{path}: cannot read the results ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("points"), list) or "deployment" not in doc:
        raise PlotError(f"{path}: not a wideep.gb200.bench results file (no deployment / points)")
    return doc


def _series(doc: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Points grouped by shape (isl/osl), each group in concurrency order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in doc["points"]:
        groups.setdefault(f"isl {row['isl']} / osl {row['osl']}", []).append(row)
    return {shape: sorted(rows, key=lambda r: r["concurrency"]) for shape, rows in groups.items()}


def label(doc: Mapping[str, Any]) -> str:
    d = doc["deployment"]
    return f"{d.get('recipe')} ({d.get('engine')}) plan {d.get('plan_hash')}"


def _title(ax: Any, title: str, docs: Sequence[Mapping[str, Any]]) -> None:
    ax.set_title(title, fontsize=11)
    if any(d["deployment"].get("engine") == "mocker" for d in docs):
        ax.text(0.5, 1.0, "\n" + _MOCKER_SHORT, transform=ax.figure.transFigure, ha="center", va="top", color="#b00020", fontsize=9)


def _draw(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    x: str,
    y: str,
    name: str,
    style: Mapping[str, Any],
) -> dict[str, Any]:
    pts = [(r[x], r[y], r["concurrency"]) for r in rows if r.get(x) is not None and r.get(y) is not None]
    (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name, **style)
    for px, py, conc in pts:
        ax.annotate(f"c={conc}", (px, py), textcoords="offset points", xytext=(5, 5), fontsize=8, color=line.get_color())
    return {"series": name, "points": len(line.get_xdata())}


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    fig.clear()


def _plot(
    plt: Any, sets: Sequence[tuple[str, Mapping[str, Any]]], path: Path, x: str, y: str, xlabel: str, ylabel: str, title: str, log_x: bool = False
) -> list[dict[str, Any]]:
    """One figure: each result set's series of (x, y) points, labelled by concurrency."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    drawn = []
    styles = ({"linestyle": "-"}, {"linestyle": "--"})
    for number, (name, doc) in enumerate(sets):
        for shape, rows in _series(doc).items():
            drawn.append(_draw(ax, rows, x, y, f"{name}: {shape}" if name else shape, styles[number % 2]))
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _title(ax, title + ("" if len(sets) > 1 else f"\n{label(sets[0][1])}"), [d for _n, d in sets])
    _save(fig, path)
    plt.close(fig)
    return drawn


def _pareto(plt: Any, sets: Sequence[tuple[str, Mapping[str, Any]]], path: Path) -> list[dict[str, Any]]:
    return _plot(
        plt,
        sets,
        path,
        "interactivity",
        "tput_per_gpu",
        "interactivity = 1000 / median TPOT (tok/s/user)",
        "total tokens/s per GPU",
        "Throughput per GPU vs interactivity",
    )


def _ttft(plt: Any, sets: Sequence[tuple[str, Mapping[str, Any]]], path: Path) -> list[dict[str, Any]]:
    return _plot(
        plt,
        sets,
        path,
        "concurrency",
        "ttft_ms_p90",
        "concurrency (requests in flight)",
        "TTFT p90 (ms)",
        "Time to first token (p90) vs concurrency",
        log_x=True,
    )


def _manifest(out: Path, name: str, plots: Mapping[str, list[dict[str, Any]]], sources: Sequence[str]) -> dict[str, Any]:
    manifest = {"sources": list(sources), "plots": dict(plots)}
    (out / name).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def plot(results_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """pareto.png and ttft_p90.png of one result set (into results_dir unless out_dir)."""
    doc = load(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    sets = [("", doc)]
    plots = {"pareto.png": _pareto(plt, sets, out / "pareto.png"), "ttft_p90.png": _ttft(plt, sets, out / "ttft_p90.png")}
    return _manifest(out, PLOTS_MANIFEST, plots, [str(Path(results_dir) / RESULTS_JSON)])


def compare(a_dir: str | Path, b_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """A and B on the same axes: compare_pareto.png, compare_ttft_p90.png (and compare.json)."""
    a, b = load(a_dir), load(b_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    name_a, name_b = f"A {label(a)}", f"B {label(b)}"
    if name_a[2:] == name_b[2:]:  # the same deployment measured twice: tell the runs apart by folder
        name_a, name_b = f"A {Path(a_dir).name}", f"B {Path(b_dir).name}"
    sets = [(name_a, a), (name_b, b)]
    plots = {
        "compare_pareto.png": _pareto(plt, sets, out / "compare_pareto.png"),
        "compare_ttft_p90.png": _ttft(plt, sets, out / "compare_ttft_p90.png"),
    }
    return _manifest(out, COMPARE_MANIFEST, plots, [str(Path(a_dir) / RESULTS_JSON), str(Path(b_dir) / RESULTS_JSON)])


def main(argv: Sequence[str]) -> int:
    usage = "usage: plots.py plot RESULTS_DIR [OUT_DIR] | plots.py compare A_DIR B_DIR OUT_DIR"
    try:
        if len(argv) in (2, 3) and argv[0] == "plot":
            manifest = plot(argv[1], argv[2] if len(argv) == 3 else None)
        elif len(argv) == 4 and argv[0] == "compare":
            manifest = compare(argv[1], argv[2], argv[3])
        else:
            sys.stderr.write(usage + "\n")
            return 2
    except PlotError as exc:
        sys.stderr.write(f"plots.py: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(manifest) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
