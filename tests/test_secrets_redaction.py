"""Secrets: one registry fed from every configured secret (env and Prefect blocks), applied to every log
handler (Prefect's API log handler included), to exception text, artifacts, outbox messages and URLs."""

from __future__ import annotations

import logging

import pytest

from core.errors import AilogError
from core.redact import redact, redact_value, register_secret

BLOCK_ONLY = "blk-Secret-8x1"


def test_secrets_known_only_from_blocks_are_masked(prefect_api):
    from blocks.documents import blocks_from_env
    from blocks.settings import load_settings
    from tests.test_foundation_blocks import ENV

    blocks_from_env({**ENV, "CONFLUENCE_PASSWORD": BLOCK_ONLY, "ES_HOST": "https://reader:esurl-Secret-2@es.bank"})
    load_settings({"PREFECT_API_URL": "set"})  # no secret in the environment at all
    assert BLOCK_ONLY not in redact(f"login failed for svc/{BLOCK_ONLY}")
    assert "esurl-Secret-2" not in redact("password esurl-Secret-2 rejected")


def test_urls_with_credentials_and_signatures_are_masked_everywhere():
    text = redact('ES_HOST=https://elastic:hunter2hunter@es.bank:9200 and {"url": "https://x/y?sig=abc123def&a=1"}')
    assert "hunter2hunter" not in text and "abc123def" not in text
    assert text.endswith('"https://x/y?sig=****&a=1"}')  # JSON stays JSON
    with pytest.raises(AilogError) as err:
        raise AilogError("cannot reach Elasticsearch at http://u:p4ssw0rd-x@127.0.0.1:1")
    assert "p4ssw0rd-x" not in str(err.value)
    assert redact_value({"t": [("token=", "https://a:bcdefg@h")]}) == {"t": [("token=", "https://****:****@h")]}


def test_es_host_with_credentials_never_appears_in_an_error():
    from blocks.settings import load_settings
    from core.errors import ConfigError
    from tasks.source.elasticsearch import ElasticsearchSource, SourceError

    for host, error in (("http://reader:es-url-Secret-9@127.0.0.1:1", SourceError),
                        ("http://reader:es-url-Secret-9@127.0.0.1", ConfigError)):
        settings = load_settings({"ES_HOST": host}, use_blocks=False)
        with pytest.raises(error) as err:
            ElasticsearchSource(settings.elasticsearch).check()
        assert "es-url-Secret-9" not in str(err.value) and "127.0.0.1" in str(err.value)


def test_every_handler_including_prefects_api_handler_redacts(prefect_api, monkeypatch, caplog):
    from prefect import flow, get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    from core.ops.logging import configure_logging

    monkeypatch.setenv("CONFLUENCE_TOKEN", "tok-Secret-777x")
    register_secret("reg-Secret-555x")

    @flow(name="secret-logger")
    def leaky():
        configure_logging("secret-logger")
        get_run_logger().info("token tok-Secret-777x and reg-Secret-555x")
        get_run_logger().error("query failed", exc_info=ValueError("reg-Secret-555x in an exception"))
        logging.getLogger("ailog.test").warning("ailog logger: tok-Secret-777x")
        raise AilogError("failed with reg-Secret-555x")

    state = leaky(return_state=True)
    assert state.is_failed() and "reg-Secret-555x" not in str(state.message)
    APILogHandler().flush()
    import anyio

    async def read():
        async with get_client() as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))

    logs = anyio.run(read)
    text = "\n".join(log.message for log in logs)
    assert "token **********" in text  # the line arrived, masked
    for secret in ("tok-Secret-777x", "reg-Secret-555x"):
        assert secret not in text and secret not in caplog.text


def test_postgres_sessions_use_tcp_keepalives_on_both_ends(password_pg):
    from pydantic import SecretStr

    from blocks.settings import DatabaseSettings
    from core.db import Database
    from tests.fakes.password_postgres import SUPERPASS, SUPERUSER

    db = Database(DatabaseSettings(host="127.0.0.1", port=password_pg.port, name="postgres", user=SUPERUSER,
                                   password=SecretStr(SUPERPASS)))
    with db.connect() as conn:
        assert conn.execute("SHOW tcp_keepalives_idle").fetchone()[0] in ("30", "30s")
        assert conn.execute("SHOW tcp_keepalives_count").fetchone()[0] == "3"
        assert conn.info.get_parameters().get("keepalives_idle") == "30"
