"""Teams cards and delivery against a local webhook, and the outbox: never lost, never sent twice."""

from __future__ import annotations

import orjson
import pytest
from pydantic import SecretStr

from blocks.settings import TeamsSettings
from tasks.outbox import deliver_pending, enqueue
from tasks.publish.teams import messages
from tasks.publish.teams.cards import SIZE_BUDGET, endpoint_kind, render
from tasks.publish.teams.sender import TeamsDeliveryError, TeamsSender
from tests.fakes.teams_server import LEGACY_JSON_OK, FakeTeams

HOSTILE = "<script>alert(1)</script> **bold** [link](http://evil) @channel ]]> \x07\x1b 数据库错误 " + "x" * 1_000_000
ALERT = {"incident_id": "I1", "alert_number": 1, "problem_id": "PABC", "template": "Timeout after <*> ms",
         "kind": "spike", "severity": "critical", "count": 412, "baseline": 3.2, "ratio": 128.7,
         "apps": ["payments-api"], "pods": ["payments-api-7f9"], "explanation": [],
         "explanation_text": "92% from pod payments-api-7f9 on version 1.4.2", "first_seen": "2026-11-20T10:00:00Z",
         "sample_message": HOSTILE, "events_since_last_alert": 0, "window": "2026-11-20T10:00:00Z/2026-11-20T10:15:00Z"}


def sender(url: str, kind: str) -> TeamsSender:
    return TeamsSender(TeamsSettings(webhook_url=SecretStr(url + "/hook?sig=s3cr3t-sig"), kind=kind, timeout=1),
                       attempts=3, backoff_s=0.01)


def test_endpoint_kind_from_url():
    assert endpoint_kind("https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d") == "legacy"
    assert endpoint_kind("https://outlook.office.com/webhook/abc") == "legacy"
    assert endpoint_kind("https://prod-12.westeurope.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke") == "workflow"
    assert endpoint_kind("https://default.environment.api.powerplatform.com/powerautomate/x") == "workflow"
    assert endpoint_kind("https://contoso.webhook.office.com/x", "workflow") == "workflow"


@pytest.mark.parametrize("kind", ["workflow", "legacy"])
def test_hostile_alert_renders_escaped_and_within_budget(kind):
    payload = render(messages.critical_alert(ALERT), "alert:I1:1", kind)
    raw = orjson.dumps(payload)
    assert len(raw) <= SIZE_BUDGET
    text = raw.decode()
    assert "<script>" not in text and "\\u0007" not in text and "数据库错误" in text
    if kind == "workflow":
        assert payload["type"] == "message"
        assert payload["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert payload["attachments"][0]["content"]["version"] == "1.4"
    else:
        assert payload["@type"] == "MessageCard" and payload["summary"]


@pytest.mark.parametrize("kind", ["workflow", "legacy"])
def test_send_succeeds_on_both_kinds(kind):
    with FakeTeams(kind) as teams:
        sender(teams.url, kind).send(messages.backfill_completed({"days_processed": 1}), "k1")
        assert len(teams.unique) == 1 and "k1" in teams.unique


@pytest.mark.parametrize("status, body, permanent", [
    (200, "Microsoft Teams endpoint returned HTTP error 429 with ContextId xyz", False),
    (400, "Summary or Text is required.", True),
    (413, "payload too large", True),
    (404, "not found", True),
])
def test_failures_are_failures(status, body, permanent):
    with FakeTeams("legacy") as teams:
        teams.script = [(status, body, {})] * 5
        with pytest.raises(TeamsDeliveryError) as err:
            sender(teams.url, "legacy").send(messages.job_health("x", "y"), "k")
        assert err.value.permanent is permanent
        assert "s3cr3t-sig" not in str(err.value)


def test_legacy_json_200_is_success_and_retry_after_is_honoured():
    with FakeTeams("legacy") as teams:
        teams.script = [(429, "Too many requests", {"Retry-After": "1"}), (200, LEGACY_JSON_OK, {})]
        sender(teams.url, "legacy").send(messages.job_health("x", "y"), "k")
        assert len(teams.unique) == 1


def test_timeout_is_retried():
    with FakeTeams("workflow") as teams:
        teams.script = ["slow"]
        sender(teams.url, "workflow").send(messages.job_health("x", "y"), "k")
        assert "k" in teams.unique


def test_outbox_teams_down_then_delivered_exactly_once(db):
    with FakeTeams("workflow") as teams:
        s = {"teams": sender(teams.url, "workflow")}
        with db.connect() as conn:
            assert enqueue(conn, key="daily_report:2026-11-20", channel="teams", kind="daily_report",
                           payload=messages.job_health("a", "b"))
            assert not enqueue(conn, key="daily_report:2026-11-20", channel="teams", kind="daily_report",
                               payload=messages.job_health("a", "b"))
            conn.commit()
        teams.down = True
        first = deliver_pending(db, s)
        assert first.sent == 0 and first.pending == 1 and first.failed == 1
        teams.down = False
        assert deliver_pending(db, s).sent == 0  # backing off: not due yet
        with db.connect() as conn:
            conn.execute("UPDATE outbox SET next_attempt_at = now()")
            conn.commit()
        second = deliver_pending(db, s)
        third = deliver_pending(db, s)
        assert (second.sent, third.sent) == (1, 0)
        assert len(teams.unique) == 1 and teams.duplicates == 0


def test_crash_between_send_and_commit_resends_once_with_the_same_key(db):
    class CrashAfterSend:
        def __init__(self, real):
            self.real = real

        def send(self, payload, key):
            self.real.send(payload, key)
            raise KeyboardInterrupt("pod killed after the POST, before the commit")

    with FakeTeams("workflow") as teams:
        real = sender(teams.url, "workflow")
        with db.connect() as conn:
            enqueue(conn, key="alert:I9:1", channel="teams", kind="alert", payload=messages.critical_alert(ALERT))
            conn.commit()
        with pytest.raises(KeyboardInterrupt):
            deliver_pending(db, {"teams": CrashAfterSend(real)})
        with db.connect() as conn:  # the lease has not expired: not re-sent yet
            assert conn.execute("SELECT status FROM outbox").fetchone()[0] == "sending"
            conn.execute("UPDATE outbox SET next_attempt_at = now() - interval '1 second'")  # lease expires
            conn.commit()
        assert deliver_pending(db, {"teams": real}).sent == 1
        assert len(teams.received) == 2 and len(teams.unique) == 1 and teams.duplicates == 1
        assert deliver_pending(db, {"teams": real}).sent == 0


def test_dry_run_sends_and_writes_nothing(db):
    with FakeTeams("workflow") as teams, db.connect() as conn:
        enqueue(conn, key="k", channel="teams", kind="alert", payload=messages.job_health("a", "b"))
        conn.commit()
        report = deliver_pending(db, {"teams": sender(teams.url, "workflow")}, dry_run=True)
        assert report.previews and not teams.requests
        assert conn.execute("SELECT status, attempts FROM outbox").fetchone() == ("pending", 0)


def test_teams_test_command_sends_the_users_test_5(tmp_path):
    import subprocess
    import sys

    with FakeTeams("workflow") as teams:
        env = {"TEAMS_WEBHOOK_URL": teams.url + "/workflows/x?sig=never-printed", "TEAMS_WEBHOOK_KIND": "workflow",
               "AILOG_HOME": str(tmp_path)}
        out = subprocess.run([sys.executable, "-m", "ailog.cli", "teams-test"], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        text = orjson.dumps(teams.unique["teams-test"]).decode()
        for fact in ("Days processed", "Successful days", "Failed days", "Total incidents", "Saved",
                     "Registry updates", "Duration"):
            assert fact in text
        assert "never-printed" not in out.stdout + out.stderr
        dry = subprocess.run([sys.executable, "-m", "ailog.cli", "teams-test", "--dry-run"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0 and len(teams.unique) == 1 and "AdaptiveCard" in dry.stdout
        off = subprocess.run([sys.executable, "-m", "ailog.cli", "teams-test"], env={**env, "TEAMS_ENABLED": "false"},
                             capture_output=True, text=True, timeout=60)
        assert off.returncode == 2 and "TEAMS_ENABLED" in off.stderr
