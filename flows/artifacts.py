"""What each run leaves in the Prefect UI: a Markdown summary, a table of the top problems and peaks, and links
to the Confluence pages. Best effort: the UI is for people, never a reason to fail a run."""

from __future__ import annotations

import logging

log = logging.getLogger("ailog.flows.artifacts")


def _safe(fn, *args, **kwargs) -> None:
    from core.redact import redact_value

    try:
        fn(*redact_value(args), **redact_value(kwargs))
    except Exception as exc:  # no API or no run context
        log.debug("artifact not created: %s", type(exc).__name__)


def leave_artifacts(flow: str, summary: dict, report: dict | None = None, settings=None) -> None:
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    lines = [f"## {flow} run", ""]
    for key in ("days_processed", "successful_days", "failed_days", "windows", "events", "peaks", "alerts",
                "alerts_queued", "problems_new", "duration_s", "teams", "confluence", "warnings"):
        if key in summary and summary[key] not in (None, [], {}):
            lines.append(f"- **{key.replace('_', ' ')}**: {summary[key]}")
    _safe(create_markdown_artifact, key=f"ailog-{flow}-summary", markdown="\n".join(lines),
          description=f"What the {flow} run did")
    if report:
        rows = [{"problem": p["problem_id"], "count": p["count"], "trend": p["trend"], "status": p["status"],
                 "apps": ", ".join(p["apps"][:3]), "template": (p.get("title") or p["template"])[:120]}
                for p in report.get("top_problems", [])[:10]]
        _safe(create_table_artifact, key="ailog-top-problems", table=rows or [{"problem": "none"}],
              description=f"Top problems {report['date']}")
        peaks = [{"start": k["start"], "kind": k["kind"], "app": k["app"], "problem": k["problem_id"],
                  "count": k["count"], "baseline": k["baseline"], "severity": k["severity"], "known": k["known"],
                  "alerted": k["alerted"]} for k in report.get("peaks", [])[:50]]
        _safe(create_table_artifact, key="ailog-peaks", table=peaks or [{"start": "no peaks"}],
              description=f"Peaks {report['date']}")
    if settings is not None and settings.confluence.configured:
        for name, page in (("daily-report", settings.confluence.daily_report_page_id),
                           ("known-errors", settings.confluence.known_errors_page_id),
                           ("known-peaks", settings.confluence.known_peaks_page_id)):
            if page:
                _safe(create_link_artifact, key=f"ailog-confluence-{name}",
                      link=f"{settings.confluence.url}/pages/viewpage.action?pageId={page}",
                      link_text=f"Confluence: {name.replace('-', ' ')}")
