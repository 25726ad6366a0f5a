"""The human-readable daily report (Markdown) that people read and the Teams digest links to."""

from __future__ import annotations

from pathlib import Path


def _esc(text: str) -> str:
    """Log text is attacker-controlled: neutralise Markdown/HTML so it renders as plain text."""
    out = str(text or "").replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")[:300]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0%}"


def render_markdown(report: dict) -> str:
    t = report["totals"]
    lines = [f"# Error report {report['date']}", "",
             f"**{t['events']}** errors in **{t['problems']}** problems "
             f"({_pct(t['change_vs_previous_day'])} vs the previous day, {_pct(t['change_vs_last_week'])} vs the same "
             f"weekday last week); **{t['new_problems']}** new, **{t['regressed_problems']}** regressed; "
             f"**{t['peaks']}** peaks, **{t['critical_peaks']}** critical, **{t['alerts']}** alerted.", ""]
    for chart in report.get("charts", [])[:1]:
        lines += [f"![errors per hour]({chart})", ""]
    lines += ["## Top problems", "", "| problem | count | trend | status | severity | apps | template |",
              "|---|---:|---|---|---|---|---|"]
    for p in report["top_problems"]:
        lines.append(f"| {p['problem_id']} | {p['count']} | {p['trend']} | {p['status']} | {p['severity'] or ''} | "
                     f"{_esc(', '.join(p['apps']))} | {_esc(p['title'] or p['template'])} |")
    for name, key in (("New problems", "new_problems"), ("Regressed problems", "regressed_problems")):
        lines += ["", f"## {name}", ""]
        lines += [f"- {p['problem_id']} ({p['count']}): {_esc(p['template'])}" for p in report[key]] or ["- none"]
    lines += ["", "## Peaks", "", "| start | kind | app | problem | count | baseline | ratio | severity | known | why |",
              "|---|---|---|---|---:|---:|---:|---|---|---|"]
    for k in report["peaks"]:
        why = "; ".join(f"{e['share']:.0%} {e['field']} {e['value']}" for e in k["explanation"][:2])
        lines.append(f"| {k['start'][11:16]} | {k['kind']} | {_esc(k['app'])} | {k['problem_id']} | {k['count']} | "
                     f"{k['baseline']} | {k['ratio']} | {k['severity']} | {'yes' if k['known'] else 'no'} | {_esc(why)} |")
    dq = report["data_quality"]
    lines += ["", "## Data quality", "",
              f"{dq['windows_processed']} of {dq['windows_expected']} windows processed; "
              f"{sum(dq['bad_documents'].values())} bad documents skipped "
              f"({', '.join(f'{k}: {v}' for k, v in dq['bad_documents'].items()) or 'none'})."]
    if dq["windows_missing"]:
        lines.append(f"Missing windows: {', '.join(dq['windows_missing'][:8])}"
                     f"{' …' if len(dq['windows_missing']) > 8 else ''}")
    return "\n".join(lines) + "\n"


def write_markdown(report: dict, output_dir: Path | str) -> Path:
    from tasks.reports.daily_report import _write_if_changed

    path = Path(output_dir) / f"daily_report_{report['date']}.md"
    _write_if_changed(path, render_markdown(report).encode())
    return path
