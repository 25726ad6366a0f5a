"""Charts as PNG (matplotlib, Agg): the day's volume by hour against its baseline, and one small chart per
top problem with its peaks marked. Deterministic bytes: fixed size, fonts and no timestamp in the metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

PNG_META = {"Software": None}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "ailog", "font.size": 8})
    return plt


def volume_chart(report: dict, path: Path) -> Path:
    plt = _plt()
    hours = [h["hour"][11:13] for h in report["hourly"]]
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    ax.bar(hours, [h["events"] for h in report["hourly"]], color="#c0392b", label="errors")
    ax.plot(hours, [h["baseline"] for h in report["hourly"]], color="#2c3e50", marker=".", label="baseline (7-day mean)")
    ax.set_title(f"Errors per hour, {report['date']} (UTC)")
    ax.legend(loc="upper right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=PNG_META)
    plt.close(fig)
    return path


def problem_chart(conn: psycopg.Connection, report: dict, problem: dict, path: Path) -> Path:
    plt = _plt()
    start = datetime.fromisoformat(report["date"]).replace(tzinfo=UTC)
    rows = dict(conn.execute(
        "SELECT window_start, sum(count)::int FROM window_totals WHERE problem_id = %s AND window_start >= %s"
        " AND window_start < %s GROUP BY 1", (problem["problem_id"], start, start + timedelta(days=1))).fetchall())
    slots = [start + timedelta(minutes=15 * i) for i in range(96)]
    values = [rows.get(s, 0) for s in slots]
    fig, ax = plt.subplots(figsize=(4, 1.6), dpi=100)
    ax.fill_between(range(96), values, step="post", color="#7f8c8d")
    for peak in report["peaks"]:
        if peak["problem_id"] == problem["problem_id"]:
            t = datetime.fromisoformat(peak["start"].replace("Z", "+00:00"))
            x = (t - start).total_seconds() / 900
            ax.axvline(x, color="#2980b9" if peak["known"] else "#c0392b", linewidth=1)
    ax.set_xticks(range(0, 97, 24), ["00", "06", "12", "18", "24"])
    ax.set_title(problem["problem_id"] + " " + (problem.get("title") or "")[:40], fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=PNG_META)
    plt.close(fig)
    return path


def render_charts(report: dict, conn: psycopg.Connection, output_dir: Path | str, *, top: int = 5) -> list[Path]:
    charts = Path(output_dir) / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    paths = [volume_chart(report, charts / f"volume_{report['date']}.png")]
    for problem in report["top_problems"][:top]:
        paths.append(problem_chart(conn, report, problem, charts / f"problem_{report['date']}_{problem['problem_id']}.png"))
    report["charts"] = [str(p.relative_to(Path(output_dir))) for p in paths]
    return paths
