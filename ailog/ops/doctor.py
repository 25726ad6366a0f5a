"""`ailog doctor`: the user's deployment checklist as a command — each configured dependency checked."""

from __future__ import annotations

import os
from dataclasses import dataclass

from blocks.settings import Settings
from core.redact import redact


@dataclass
class Check:
    name: str
    status: str  # pass | fail | skip
    detail: str


def _run(name: str, fn) -> Check:
    try:
        return Check(name, "pass", fn())
    except Exception as exc:  # every failure becomes one row, never a traceback
        return Check(name, "fail", redact(str(exc)).splitlines()[0][:300] if str(exc) else type(exc).__name__)


def run_checks(settings: Settings) -> list[Check]:
    checks = []

    def database() -> str:
        from core.db import open_database
        from core.db.migrate import available_migrations, schema_version

        db = open_database(settings)
        current, latest = schema_version(db), available_migrations()[-1].version
        if current != latest:
            raise RuntimeError(f"schema at {current or 'none'}, this release needs {latest}: run `ailog db migrate`")
        with db.connect() as conn:  # the registry refresh stages its rows in a temporary table
            if not conn.execute("SELECT has_database_privilege(current_database(), 'TEMPORARY')").fetchone()[0]:
                raise RuntimeError(f"{db.settings.user} may not create temporary tables: GRANT TEMPORARY ON DATABASE"
                                   f" {db.settings.name} TO {db.settings.user} (PostgreSQL grants it to all by default)")
        return f"reachable, schema {current}" + (" (embedded)" if db.is_embedded else "")

    checks.append(_run("PostgreSQL", database))
    if settings.elasticsearch.configured:
        def elasticsearch() -> str:
            from tasks.source.elasticsearch import ElasticsearchSource

            source = ElasticsearchSource(settings.elasticsearch)
            source.check()
            resolved = source.client.indices.resolve_index(name=settings.elasticsearch.index)
            n = len(resolved.get("indices", [])) + len(resolved.get("data_streams", []))
            if n == 0:
                raise RuntimeError(f"index pattern {settings.elasticsearch.index} matches nothing: check ES_INDEX")
            return f"version compatible, {n} index/data stream(s) match {settings.elasticsearch.index}"

        checks.append(_run("Elasticsearch", elasticsearch))
    else:
        checks.append(Check("Elasticsearch", "skip", "ES_HOST not set (files via --input only)"))
    if settings.teams.active:
        def teams() -> str:
            from tasks.publish.teams.sender import TeamsSender

            sender = TeamsSender(settings.teams)
            if os.environ.get("AILOG_DOCTOR_SEND_TEAMS", "").lower() in {"1", "true", "yes"}:
                from tasks.publish.teams import messages

                sender.send(messages.job_health("doctor", "test card from `ailog doctor`"), "doctor")
                return f"{sender.kind} webhook accepted a test card"
            return f"{sender.kind} webhook configured (set AILOG_DOCTOR_SEND_TEAMS=true to send a test card)"

        checks.append(_run("Teams", teams))
    else:
        checks.append(Check("Teams", "skip", "TEAMS_ENABLED=false or TEAMS_WEBHOOK_URL not set"))
    if settings.confluence.configured:
        def confluence() -> str:
            from tasks.publish.confluence.client import ConfluencePublisher

            settings.confluence.require_pages()
            pub = ConfluencePublisher(settings.confluence)
            user = pub.verify_identity()
            for env_name, page in (("CONFLUENCE_DAILY_REPORT_PAGE_ID", settings.confluence.daily_report_page_id),
                                   ("CONFLUENCE_KNOWN_ERRORS_PAGE_ID", settings.confluence.known_errors_page_id),
                                   ("CONFLUENCE_KNOWN_PEAKS_PAGE_ID", settings.confluence.known_peaks_page_id)):
                pub.current(page, env_name)
            return f"signed in as {user}; the three pages exist"

        checks.append(_run("Confluence", confluence))
    else:
        checks.append(Check("Confluence", "skip", "CONFLUENCE_URL not set"))
    return checks
