"""The report of a training run: ``report.md`` plus PNG plots, written beside the run's models.

Inputs are the plain dicts the training steps save with their models (``evaluation.json`` of the towers,
``ranking_evaluation.json`` of the ranker), so a report can be rebuilt from the registry alone. Every model
number stands beside its baselines, and on synthetic data beside the oracle (design §6).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Figures drawn without pyplot: files only, and importing this never switches a notebook's plotting backend.
from matplotlib.figure import Figure

from recsys.training.splits import Split

REPORT_FOLDER, REPORT_FILE = "report", "report.md"
TRAINING_PNG, RECALL_PNG, MAP_PNG, IMPORTANCE_PNG = "training.png", "recall_at_k.png", "map12.png", "importance.png"
METHOD = "method"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as a Markdown table; floats with 4 decimals, missing values as a dash."""
    if not rows:
        return "_no rows_\n"
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        if value is None:
            return "—"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(col)) for col in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _plot_training(history: Sequence[Mapping[str, float]], path: Path) -> None:
    epochs = [row["epoch"] for row in history]
    recall_key = next((key for key in history[0] if key.startswith("val_")), None)
    fig = Figure(figsize=(6, 3.5))
    left = fig.subplots()
    left.plot(epochs, [row["loss"] for row in history], "o-", color="tab:blue", label="training loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss", color="tab:blue")
    if recall_key:
        right = left.twinx()
        right.plot(epochs, [row[recall_key] for row in history], "s-", color="tab:orange")
        label = recall_key.removeprefix("val_").replace("_at_", "@").replace("_", " ")
        right.set_ylabel(f"validation {label}", color="tab:orange")
    left.set_title("two-tower training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


_RECALL, _ACCURACY = re.compile(r"recall@(\d+)$"), re.compile(r"top_(\d+)_accuracy$")


def _plot_recall(metrics: Sequence[Mapping[str, Any]], path: Path) -> None:
    """recall@K per method; top-K accuracy where the table has no recall (a split scored row by row)."""
    pattern = _RECALL if any(_RECALL.match(key) for row in metrics for key in row) else _ACCURACY
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ks: set[int] = set()
    for row in metrics:
        points = sorted((int(m.group(1)), value) for key, value in row.items() if (m := pattern.match(key)))
        points = [(k, v) for k, v in points if v is not None]
        ks |= {k for k, _ in points}
        if points:
            ax.plot([k for k, _ in points], [v for _, v in points], "o-", label=row[METHOD])
    ax.set_xscale("log")
    ax.set_xticks(sorted(ks), [str(k) for k in sorted(ks)])
    ax.minorticks_off()
    ax.set_xlabel("K (articles retrieved)")
    ax.set_ylabel("recall@K (test week)" if pattern is _RECALL else "top-K accuracy (test rows)")
    ax.set_title("retrieval: model vs baselines")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_bars(labels: Sequence[str], values: Sequence[float], title: str, path: Path, horizontal: bool) -> None:
    fig = Figure(figsize=(6, max(3.0, 0.25 * len(labels) + 1) if horizontal else 3.5))
    ax = fig.subplots()
    if horizontal:
        ax.barh(list(labels)[::-1], list(values)[::-1], color="tab:green")
    else:
        ax.bar(labels, values, color="tab:purple")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _describe_split(split: Split) -> str:
    text = split.describe()
    if not split.per_row:
        return f"Time split (design §6): {text}.\n"
    return f"{text[0].upper()}{text[1:]}: only comparable with published numbers of that protocol.\n"


def _describe_weeks(weeks: Mapping[str, Any] | None) -> str:
    """The ranker's weeks by start day (saved since the ranker uses the run's own split; older ones lack them)."""
    if not weeks:
        return ""
    return (
        f"Ranker weeks (start days): training {', '.join(weeks['train'])}; validation {weeks['validation']}; "
        f"test {weeks['test']}.\n"
    )


def write_report(
    folder: str | Path,
    retrieval: Mapping[str, Any],
    ranking: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``report.md`` and its plots into ``folder``; returns the Markdown file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    split = Split.from_dict(retrieval["split"]) if retrieval.get("split") else None
    rows = retrieval.get("rows", {})
    by_rows = split is not None and split.per_row
    parts = [
        f"# Training run {retrieval.get('run_id', '?')}\n",
        _describe_split(split) if split else "",
        f"Rows: {', '.join(f'{name} {count:,}' for name, count in rows.items())}; "
        f"catalogue {retrieval.get('catalogue', 0):,} articles.\n",
        f"## Retrieval (two-tower) on the test {'rows' if by_rows else 'week'}, whole catalogue\n",
        markdown_table(retrieval["metrics"]),
    ]
    history = retrieval.get("history") or []
    if history:
        _plot_training(history, folder / TRAINING_PNG)
        parts += [
            "## Training\n",
            markdown_table(history, ["epoch", "loss", *[k for k in history[0] if k.startswith("val_")]]),
            f"![training curves]({TRAINING_PNG})\n",
        ]
    _plot_recall(retrieval["metrics"], folder / RECALL_PNG)
    parts.append(f"![recall@K]({RECALL_PNG})\n")
    if ranking:
        table = ranking["metrics"]
        _plot_bars(
            [r[METHOD] for r in table], [r["map@12"] for r in table], "MAP@12 (test week)", folder / MAP_PNG, False
        )
        parts += [
            "## Whole pipeline on the test week (retrieve → rank → top 12)\n",
            f"Ranker objective: {ranking.get('objective', '?')}.\n",
            _describe_weeks(ranking.get("weeks")),
            markdown_table(table),
            f"![MAP@12]({MAP_PNG})\n",
        ]
        importance = list(ranking.get("importance") or [])[:20]
        if importance:
            _plot_bars(
                [r["feature"] for r in importance],
                [r["importance"] for r in importance],
                "ranker feature importance (top 20)",
                folder / IMPORTANCE_PNG,
                True,
            )
            parts += [
                "## Ranker feature importance (top 20)\n",
                markdown_table(importance),
                f"![importance]({IMPORTANCE_PNG})\n",
            ]
    path = folder / REPORT_FILE
    path.write_text("\n".join(part for part in parts if part))
    return path
