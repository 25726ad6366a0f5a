"""The outbox under Teams outages, rate limits and refusals (real PostgreSQL, the real sender against a local
Teams that validates cards): no message lost, none sent twice, nothing dead-lettered by a long outage, stale
alerts folded into one digest, one refused message never blocks the others, and gauges for what waits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from blocks.settings import TeamsSettings
from tasks.outbox import deliver_pending, enqueue
from tasks.outbox.outbox import RetryPolicy
from tasks.publish.teams import messages
from tasks.publish.teams.sender import TeamsSender
from tests.fakes.teams_server import FakeTeams, card_error
from tests.test_ops_metrics_automations import pushgateway  # noqa: F401 - the real Pushgateway fixture
from tests.test_teams_outbox import ALERT

POLICY = RetryPolicy()


def teams_sender(url: str) -> dict:
    settings = TeamsSettings(webhook_url=SecretStr(url + "/workflows/x?sig=outbox-sig-Secret"), kind="workflow",
                             timeout=1)
    return {"teams": TeamsSender(settings, attempts=2, backoff_s=0.01)}


def queue(db, n: int, kind: str = "alert", prefix: str = "alert") -> list[str]:
    keys = []
    with db.connect() as conn:
        for i in range(n):
            key = f"{prefix}:I{i}:1"
            payload = messages.critical_alert({**ALERT, "problem_id": f"P{i}", "sample_message": f"sample {i}"}) \
                if kind == "alert" else messages.job_health(f"check {i}", "detail")
            enqueue(conn, key=key, channel="teams", kind=kind, payload=payload)
            keys.append(key)
        conn.commit()
    return keys


def time_passes(db, minutes: float) -> None:
    """Move the outbox's clock: everything was queued and scheduled `minutes` earlier."""
    with db.connect() as conn:
        conn.execute("UPDATE outbox SET created_at = created_at - make_interval(mins => %s),"
                     " next_attempt_at = next_attempt_at - make_interval(mins => %s)", (minutes, minutes))
        conn.commit()


def statuses(db) -> dict:
    with db.connect() as conn:
        return dict(conn.execute("SELECT idempotency_key, status FROM outbox").fetchall())


def test_a_day_long_outage_delays_messages_but_never_dead_letters_or_doubles_them(db):
    keys = queue(db, 3, kind="job_health", prefix="health")
    with FakeTeams("workflow") as teams:
        senders = teams_sender(teams.url)
        teams.down = True
        for _run in range(22):  # 22 hours, a delivery attempt every hour, Teams answering 502 throughout
            report = deliver_pending(db, senders)
            assert report.sent == 0 and report.dead == 0 and report.pending == 3
            time_passes(db, 60)
        with db.connect() as conn:
            attempts = sum(a for (a,) in conn.execute("SELECT attempts FROM outbox"))
        assert attempts > 30  # more than an attempt count limit of 10 per message would have allowed
        teams.down = False
        time_passes(db, 31)
        assert deliver_pending(db, senders).sent == 3
        assert deliver_pending(db, senders).sent == 0
        assert sorted(teams.unique) == sorted(keys) and teams.duplicates == 0


def test_a_message_past_its_budget_is_dead_and_counted(db):
    queue(db, 1, kind="job_health", prefix="health")
    with FakeTeams("workflow") as teams:
        teams.down = True
        time_passes(db, 24 * 60 + 1)
        report = deliver_pending(db, teams_sender(teams.url))
        assert report.dead == 1 and report.dead_total == 1 and report.pending == 0
        assert "budget" in report.warnings[0] and "outbox-sig-Secret" not in report.warnings[0]


def test_stale_alerts_expire_into_one_digest_instead_of_a_flood(db):
    keys = queue(db, 8)
    with FakeTeams("workflow") as teams:
        senders = teams_sender(teams.url)
        teams.down = True
        deliver_pending(db, senders)
        time_passes(db, 3 * 60)  # three hours of outage: the alerts are history now
        fresh = queue(db, 1, prefix="fresh")
        teams.down = False
        report = deliver_pending(db, senders)
        assert report.expired == 8 and report.sent == 2
        assert deliver_pending(db, senders).sent == 0
        assert sorted(teams.unique) == sorted([*fresh, f"digest:{keys[0]}:8"]) and teams.duplicates == 0
        digest = orjson.dumps(teams.unique[f"digest:{keys[0]}:8"]).decode()
        assert "8 delayed alert" in digest and all(f"P{i}" in digest for i in range(8))
        assert list(statuses(db).values()).count("expired") == 8


@pytest.mark.parametrize("status", [400, 404, 413])
def test_one_refused_message_does_not_fail_the_batch(db, status):
    keys = queue(db, 4, kind="job_health", prefix="health")
    with FakeTeams("workflow") as teams:
        teams.script = [None, (status, "refused", {})]  # the second message is refused
        report = deliver_pending(db, teams_sender(teams.url))
        assert (report.sent, report.dead, report.pending) == (3, 1, 0)
        assert statuses(db)[keys[1]] == "dead" and sorted(teams.unique) == sorted(keys[:1] + keys[2:])


def test_refused_credentials_keep_every_message_queued(db):
    queue(db, 4, kind="job_health", prefix="health")
    with FakeTeams("workflow") as teams:
        teams.script = [(401, "Unauthorized", {})] * 4
        report = deliver_pending(db, teams_sender(teams.url))
        assert report.dead == 0 and report.pending == 4 and len(teams.requests) == 1  # stopped at once


def test_rate_limiting_for_several_runs_loses_nothing(db):
    keys = queue(db, 5, kind="job_health", prefix="health")
    with FakeTeams("workflow") as teams:
        senders = teams_sender(teams.url)
        for _run in range(4):
            teams.script = [(429, "Too many requests", {"Retry-After": "0"})] * 4 + [None]
            deliver_pending(db, senders)
            time_passes(db, 31)
        while deliver_pending(db, senders).sent:
            pass
        assert sorted(teams.unique) == sorted(keys) and teams.duplicates == 0


def test_backoff_grows_and_is_capped():
    assert [POLICY.backoff(a).total_seconds() / 60 for a in (1, 2, 3, 6, 20)] == [1, 2, 4, 30, 30]


def test_the_teams_stand_in_refuses_broken_cards():
    card = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                 "content": {"type": "AdaptiveCard", "version": "1.4", "body": []}}]}
    assert card_error(card) is None
    for broken, words in [({"text": "x"}, "envelope"), ({**card, "attachments": [{"contentType": "text/plain"}]}, "contentType"),
                          ({"type": "message", "attachments": [{**card["attachments"][0], "content": {
                              "type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock"}]}}]}, "text"),
                          ({"type": "message", "attachments": [{**card["attachments"][0], "content": {
                              "type": "AdaptiveCard", "version": "1.4", "body": [],
                              "actions": [{"type": "Action.Submit"}]}}]}, "not supported")]:
        assert words in card_error(broken)


def test_the_outbox_alert_rules_pass_promtool():
    from core.ops.metrics import push_outbox_metrics

    rules = Path(__file__).parents[1] / "deploy" / "prometheus" / "ailog-rules.yml"
    assert "ailog_outbox_pending" in rules.read_text() and "ailog_outbox_dead" in rules.read_text()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (.ci/run installs it)"
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not push_outbox_metrics(2, 1, None)


def test_outbox_gauges_are_pushed(pushgateway):  # noqa: F811 - the imported fixture
    import urllib.request

    from core.ops.metrics import push_outbox_metrics

    assert push_outbox_metrics(2, 1, pushgateway)
    body = urllib.request.urlopen(pushgateway + "/metrics", timeout=5).read().decode()  # noqa: S310 - loopback
    assert 'ailog_outbox_pending{instance="",job="ailog_outbox"} 2' in body
    assert 'ailog_outbox_dead{instance="",job="ailog_outbox"} 1' in body
