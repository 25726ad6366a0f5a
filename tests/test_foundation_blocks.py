"""Prefect blocks: registered, created from the env vars, read back with precedence over env, secrets masked."""

from __future__ import annotations

import logging

from blocks.documents import blocks_from_env, register_block_types
from blocks.settings import load_settings

ENV = {
    "DB_HOST": "db.bank", "DB_USER": "app", "DB_PASSWORD": "db-Secret-111", "DB_DDL_USER": "owner",
    "DB_DDL_PASSWORD": "ddl-Secret-222", "DB_DDL_ROLE": "ailog_ddl",
    "ES_HOST": "es.bank", "ES_USERNAME": "reader", "ES_PASSWORD": "es-Secret-333",
    "TEAMS_WEBHOOK_URL": "https://prod-1.westeurope.logic.azure.com/workflows/abc?sig=teams-Secret-444",
    "CONFLUENCE_URL": "https://wiki.bank", "CONFLUENCE_USERNAME": "svc", "CONFLUENCE_PASSWORD": "conf-Secret-555",
    "CONFLUENCE_DAILY_REPORT_PAGE_ID": "11", "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "12", "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "13",
    "AILOG_REPORTS_DIR": "/var/ailog/reports",
}
SECRETS = ("db-Secret-111", "ddl-Secret-222", "es-Secret-333", "teams-Secret-444", "conf-Secret-555")


def test_blocks_from_env_take_precedence_and_hide_secrets(prefect_api, caplog):
    caplog.set_level(logging.DEBUG)
    assert "ailog-postgres" in register_block_types()
    outcome = blocks_from_env(ENV)
    assert all(v.startswith("saved") for v in outcome.values()), outcome

    # The blocks win over different environment values.
    env = {"PREFECT_API_URL": "set", "DB_HOST": "other-host", "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "999"}
    settings = load_settings(env)
    assert settings.sources["database"] == "block:ailog-postgres"
    assert settings.database.host == "db.bank" and settings.database.ddl_role == "ailog_ddl"
    assert settings.database.password.get_secret_value() == "db-Secret-111"
    assert settings.elasticsearch.url == "https://es.bank:9200"
    assert settings.teams.webhook_url.get_secret_value().endswith("teams-Secret-444")
    assert settings.confluence.known_peaks_page_id == "13"
    assert settings.reports.directory == "/var/ailog/reports" and settings.sources["reports"] == "block:ailog-reports"

    text = repr(settings) + str(outcome) + caplog.text
    for secret in SECRETS:
        assert secret not in text


def test_an_unset_reports_directory_saves_no_block():
    """Without AILOG_REPORTS_DIR there is nothing to save: the default (or the image's value) stays in force."""
    outcome = blocks_from_env({k: v for k, v in ENV.items() if k != "AILOG_REPORTS_DIR"} | {"PREFECT_API_URL": "x"},
                              sections=("reports",))
    assert outcome == {"reports": "not configured in the environment; skipped"}


def test_without_blocks_env_is_used(prefect_api):
    settings = load_settings({"PREFECT_API_URL": "set", "AILOG_BLOCK_TEAMS": "does-not-exist",
                              "TEAMS_WEBHOOK_URL": "https://example.invalid/hook"})
    assert settings.sources["teams"] == "env"
