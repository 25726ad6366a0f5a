"""Neutral Teams messages (plain JSON-able dicts): what to say, not how a card shows it.

A message: {"kind", "title", "summary", "severity", "facts": [[name, value]], "sections": [{"title", "lines"}],
"links": [[title, url]]}. Every value that comes from a log is user-controlled and is escaped by the renderer.
"""

from __future__ import annotations

SEVERITY_COLOUR = {"critical": "attention", "high": "warning", "medium": "accent", "low": "good", "info": "good"}


def message(kind: str, title: str, summary: str, severity: str = "info", facts=(), sections=(), links=()) -> dict:
    return {"kind": kind, "title": title, "summary": summary, "severity": severity,
            "facts": [[str(k), str(v)] for k, v in facts], "sections": list(sections),
            "links": [[str(t), str(u)] for t, u in links if u]}


def critical_alert(alert: dict) -> dict:
    kind = alert["kind"]
    apps = ", ".join(alert.get("apps") or [])
    baseline = alert.get("baseline") or 0
    facts = [("Problem", f"{alert['problem_id']}"), ("Kind", kind), ("Severity", alert["severity"]),
             ("Events", f"{alert['count']} (expected {baseline:.1f}, ×{alert.get('ratio') or 0:.1f})"),
             ("Applications", apps or "-"), ("Window", alert.get("window", ""))]
    if alert.get("pods"):
        facts.append(("Pods", ", ".join(alert["pods"][:5])))
    if alert.get("explanation_text"):
        facts.append(("Explanation", alert["explanation_text"]))
    if alert.get("first_seen"):
        facts.append(("First seen", alert["first_seen"]))
    if alert.get("alert_number", 1) > 1:
        facts.append(("Since last alert", f"{alert.get('events_since_last_alert', 0)} events (alert #{alert['alert_number']})"))
    sections = [{"title": "Template", "lines": [alert.get("template") or ""]},
                {"title": "Sample message", "lines": [(alert.get("sample_message") or "")[:1500]]}]
    if alert.get("members"):
        sections.append({"title": "Rising together", "lines": [f"{m['app']}: {m['problem_id']} ({m['kind']}, {m['count']})"
                                                               for m in alert["members"][:15]]})
    late = int(alert.get("late_minutes") or 0)
    if late:
        facts.insert(0, ("Late", f"judged {late} min after its window closed (a run failed or was late, or logs "
                                  "arrived late)"))
    title = f"Critical {kind}: {apps or alert['problem_id']}" + (f" (late by {late} min)" if late else "")
    summary = f"{alert['count']} events of {alert['problem_id']} in {apps}"
    return message("alert", title, summary, "critical", facts, sections)


def late_summary(missed: list[dict]) -> dict:
    """Critical peaks found in windows judged too late to alert one by one: one message, never silence."""
    windows = sorted({m["window"] for m in missed})
    lines = [f"{m['window']}: {m['kind']} of {m['problem_id']} in {m['app']} ({m['count']} events, "
             f"×{m.get('ratio') or 0:.1f}), {m['late_minutes']} min late" for m in missed[:30]]
    if len(missed) > 30:
        lines.append(f"… and {len(missed) - 30} more")
    facts = [("Critical peaks", len(missed)), ("Windows", f"{windows[0].split('/')[0]} → {windows[-1].split('/')[1]}"),
             ("Why late", "these windows were judged after their live-alert period (failed or late runs)")]
    return message("late_summary", f"Missed while behind: {len(missed)} critical peak(s)",
                   f"{len(missed)} critical peak(s) found in windows judged late", "high", facts,
                   [{"title": "Critical peaks", "lines": lines}])


def recovered(incident: dict) -> dict:
    """An alerted incident has been quiet for its closing period: on-call can stand down."""
    members = incident.get("members") or []
    who = incident.get("app") if incident.get("app") not in (None, "*") else ", ".join(
        sorted({m["app"] for m in members})[:5])
    facts = [("Incident", incident["incident_id"]), ("Problem", incident.get("problem_id") or "-"),
             ("Applications", who or "-"), ("Opened", incident["opened_at"]), ("Last seen", incident["last_seen_at"]),
             ("Events", incident.get("events_total", 0))]
    return message("recovered", f"Recovered: {who or incident.get('problem_id')}",
                   f"quiet since {incident['last_seen_at']}", "info", facts)


def daily_report(report: dict, confluence_url: str | None) -> dict:
    t = report["totals"]
    change = t.get("change_vs_previous_day")
    facts = [("Errors", f"{t['events']} ({'n/a' if change is None else f'{change:+.0%}'} vs previous day)"),
             ("Problems", f"{t['problems']} ({t['new_problems']} new, {t['regressed_problems']} regressed)"),
             ("Peaks", f"{t['peaks']} ({t['critical_peaks']} critical incident(s), "
                       f"{t.get('expected_peaks', 0)} expected, {t['alerts']} alerted)")]
    top = [f"{i}. {p['count']} × {p.get('title') or p['template']} [{p['trend']}] ({', '.join(p['apps'][:3])})"
           for i, p in enumerate(report["top_problems"][:5], 1)]
    sections = [{"title": "Top 5 issues", "lines": top or ["no errors"]}]
    if report.get("new_problems"):
        sections.append({"title": "New problems", "lines": [f"{p['count']} × {p['template']}" for p in report["new_problems"][:5]]})
    if report.get("regressed_problems"):
        sections.append({"title": "Regressed", "lines": [f"{p['count']} × {p['template']}"
                                                         for p in report["regressed_problems"][:5]]})
    return message("daily_report", f"Daily error report {report['date']}", f"{t['events']} errors, {t['problems']} problems",
                   "info", facts, sections, [("Open the report in Confluence", confluence_url)])


def backfill_completed(summary: dict) -> dict:
    facts = [("Days processed", summary.get("days_processed", 0)),
             ("Successful days", ", ".join(summary.get("successful_days", [])) or "-"),
             ("Failed days", ", ".join(summary.get("failed_days", [])) or "none"),
             ("Total incidents", summary.get("incidents", 0)), ("Saved", summary.get("saved_rows", 0)),
             ("Registry updates", f"problems {summary.get('problems_new', 0)}, peaks {summary.get('peaks', 0)}"),
             ("Duration", f"{summary.get('duration_s', 0)} s")]
    return message("backfill_completed", "Backfill completed", f"{summary.get('days_processed', 0)} day(s) processed",
                   "info" if not summary.get("failed_days") else "high", facts)


def backfill_failed(day: str, error: str) -> dict:
    return message("backfill_failed", f"Backfill failed on {day}", f"Backfill failed on {day}", "critical",
                   [("Day", day), ("Error", error[:500]), ("Recovery", f"ailog backfill --start {day[:10]} --end {day[:10]}")])


def regular_failed(window: str, error: str) -> dict:
    return message("regular_failed", "Regular phase failed", f"Regular phase failed at {window}", "critical",
                   [("When", window), ("Error", error[:500]), ("Recovery", "the next run in 15 minutes retries")])


def job_health(check: str, detail: str) -> dict:
    return message("job_health", f"AI Log Analyzer: {check}", detail, "high", [("Check", check), ("Detail", detail)])
