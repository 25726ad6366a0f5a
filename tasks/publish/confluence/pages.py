"""The three pages: Known Errors, Known Peaks, and the daily report (with its charts shown inline)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from blocks.settings import ConfluenceSettings
from core.errors import ConfigError
from tasks.publish.confluence import storage as s
from tasks.publish.confluence.client import ConfluencePublisher
from tasks.reports.csv_export import ERRORS_COLUMNS, PEAKS_COLUMNS

TEMPLATE_VERSION = "1"  # bump when the page layout changes, so unchanged data is re-published once


def data_hash(*parts: bytes) -> str:
    h = hashlib.sha256(TEMPLATE_VERSION.encode())
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def known_errors_body(errors_csv: Path) -> str:
    return (s.heading("Known errors") + s.paragraph("One row per problem, maintained by AI Log Analyzer.")
            + s.csv_table(errors_csv, columns=ERRORS_COLUMNS[:11] + ["title", "muted", "ticket"])
            + s.attachment_link(errors_csv.name, "Full table (CSV)"))


def known_peaks_body(peaks_csv: Path) -> str:
    return (s.heading("Known peaks") + s.paragraph("Every detected peak, newest first.")
            + s.csv_table(peaks_csv, columns=PEAKS_COLUMNS[:13]) + s.attachment_link(peaks_csv.name, "Full table (CSV)"))


def csv_page_body(title: str, csv_file: Path) -> str:
    return s.heading(title) + s.csv_table(csv_file) + s.attachment_link(csv_file.name)


def daily_report_body(report: dict, charts: list[Path]) -> str:
    t = report["totals"]
    change = t.get("change_vs_previous_day")
    parts = [s.heading(f"Error report {report['date']}"),
             s.paragraph(f"{t['events']} errors in {t['problems']} problems "
                         f"({'n/a' if change is None else f'{change:+.0%}'} vs the previous day); {t['new_problems']} new, "
                         f"{t['regressed_problems']} regressed; {t['peaks']} peaks, {t['critical_peaks']} critical, "
                         f"{t['alerts']} alerted.")]
    parts += [s.image(c.name) for c in charts[:1]]
    parts.append(s.heading("Top problems", 3))
    parts.append(s.table(["problem", "count", "trend", "status", "severity", "apps", "template"],
                         [[p["problem_id"], p["count"], p["trend"], p["status"], p["severity"] or "",
                           ", ".join(p["apps"]), p.get("title") or p["template"]] for p in report["top_problems"]]))
    for name, key in (("New problems", "new_problems"), ("Regressed problems", "regressed_problems")):
        parts.append(s.heading(name, 3))
        rows = [[p["problem_id"], p["count"], p["template"]] for p in report[key]]
        parts.append(s.table(["problem", "count", "template"], rows) if rows else s.paragraph("none"))
    parts.append(s.heading("Peaks", 3))
    parts.append(s.table(["start", "kind", "app", "problem", "count", "baseline", "ratio", "severity", "known", "why"],
                         [[k["start"], k["kind"], k["app"], k["problem_id"], k["count"], k["baseline"], k["ratio"],
                           k["severity"], "yes" if k["known"] else "no",
                           "; ".join(f"{e['share']:.0%} {e['field']} {e['value']}" for e in k["explanation"][:2])]
                          for k in report["peaks"][:200]]))
    parts += [s.image(c.name) for c in charts[1:]]
    dq = report["data_quality"]
    parts.append(s.paragraph(f"Data quality: {dq['windows_processed']} of {dq['windows_expected']} windows processed, "
                             f"{sum(dq['bad_documents'].values())} bad documents skipped."))
    return "".join(parts)


def publish_tables(publisher: ConfluencePublisher, settings: ConfluenceSettings, output_dir: str) -> dict:
    """Only the Known Errors and Known Peaks pages (the regular phase's optional auto-publish)."""
    out = Path(output_dir)
    result = {}
    for env_name, page_id, title, build, name in (
            ("CONFLUENCE_KNOWN_ERRORS_PAGE_ID", settings.known_errors_page_id, "Known errors", known_errors_body,
             "errors_table_latest.csv"),
            ("CONFLUENCE_KNOWN_PEAKS_PAGE_ID", settings.known_peaks_page_id, "Known peaks", known_peaks_body,
             "peaks_table_latest.csv")):
        if not page_id:
            raise ConfigError(f"{env_name} is not set: give the id of the Confluence page to publish to")
        path = out / name
        r = publisher.publish_page(page_id, title, build(path), data_hash=data_hash(path.read_bytes()),
                                   attachments=[path], page_env=env_name)
        result[title] = f"version {r.version}" + ("" if r.changed else " (unchanged)")
    return result


def publish_all(publisher: ConfluencePublisher | None, settings: ConfluenceSettings, report: dict, output_dir: str,
                *, dry_run: bool = False) -> dict:
    """Publish the three pages; unchanged data makes no new version. Returns what happened per page."""
    settings.require_pages()
    out = Path(output_dir)
    errors_csv, peaks_csv = out / "errors_table_latest.csv", out / "peaks_table_latest.csv"
    if dry_run and not (errors_csv.exists() and peaks_csv.exists()):
        print(f"[dry run] would publish the daily report {report['date']} to page {settings.daily_report_page_id} and "
              f"the Known Errors / Known Peaks tables to pages {settings.known_errors_page_id} / "
              f"{settings.known_peaks_page_id} (their CSVs are written by a real run)")
        return {"pages": "dry run"}
    for f in (errors_csv, peaks_csv):
        if not f.exists():
            raise ConfigError(f"{f} does not exist: run the backfill (or `ailog publish`) to write it first")
    charts = [out / c for c in report.get("charts", []) if (out / c).exists()]
    import orjson

    report_raw = orjson.dumps(report, option=orjson.OPT_SORT_KEYS)
    pages = [
        ("CONFLUENCE_KNOWN_ERRORS_PAGE_ID", settings.known_errors_page_id, "Known errors",
         known_errors_body(errors_csv), [errors_csv], data_hash(errors_csv.read_bytes())),
        ("CONFLUENCE_KNOWN_PEAKS_PAGE_ID", settings.known_peaks_page_id, "Known peaks",
         known_peaks_body(peaks_csv), [peaks_csv], data_hash(peaks_csv.read_bytes())),
        ("CONFLUENCE_DAILY_REPORT_PAGE_ID", settings.daily_report_page_id, f"Error report {report['date']}",
         daily_report_body(report, charts), charts, data_hash(report_raw, *(c.read_bytes() for c in charts))),
    ]
    result = {}
    for env_name, page_id, title, body, attachments, digest in pages:
        if dry_run:
            print(f"[dry run] would publish {title!r} to page {page_id} ({len(body)} characters, "
                  f"{len(attachments)} attachment(s))")
            result[title] = "dry run"
            continue
        r = publisher.publish_page(page_id, title, body, data_hash=digest, attachments=attachments, page_env=env_name)
        result[title] = f"version {r.version}" + ("" if r.changed else " (unchanged)")
    return result
