"""Operations: metrics arrive in a real Pushgateway, alert rules pass promtool, the dashboard uses only metrics
we push, and automations are idempotent and fire against a real Prefect API when a run crashes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from core.ops.metrics import push_run_metrics
from tests.fakes.http import FakeServer, Response

ROOT = Path(__file__).resolve().parents[1]
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory):
    if not PUSHGATEWAY:
        pytest.skip("Debian's prometheus-pushgateway is not installed (.ci/run installs it)")
    port = free_port()
    state = tmp_path_factory.mktemp("pushgateway") / "metrics.db"  # Debian's build persists by default: isolate it
    proc = subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={state}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/-/ready", timeout=1)  # noqa: S310 - loopback
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_metrics_arrive_in_the_pushgateway(pushgateway):
    figures = {"windows": 4, "events": 1234, "bad_documents": 2, "peaks": 3, "alerts": 1, "alerts_queued": 1,
               "db_write_seconds": 0.8, "lag_seconds": 420, "confluence": "failed: 401"}
    assert push_run_metrics("regular", "completed", 12.5, figures, pushgateway)
    body = urllib.request.urlopen(pushgateway + "/metrics", timeout=5).read().decode()  # noqa: S310 - loopback
    for line in ('ailog_run_success{flow="regular",group="run",instance="",job="ailog_regular"} 1',
                 'ailog_events_read{flow="regular",group="run",instance="",job="ailog_regular"} 1234',
                 'ailog_lag_seconds{flow="regular",group="run",instance="",job="ailog_regular"} 420',
                 'ailog_confluence_publish_success{flow="regular",group="run",instance="",job="ailog_regular"} 0'):
        assert line in body


def _last_success(gateway: str, flow: str) -> str | None:
    body = urllib.request.urlopen(gateway + "/metrics", timeout=5).read().decode()  # noqa: S310 - loopback
    prefix = f'ailog_run_last_success_timestamp_seconds{{flow="{flow}",group="success",instance="",job="ailog_{flow}"}}'
    return next((line.split()[-1] for line in body.splitlines() if line.startswith(prefix)), None)


def test_a_failed_run_keeps_the_last_success(pushgateway):
    """The 'has not succeeded for 30 minutes' alerts read last_success: a failed run must not erase it."""
    assert push_run_metrics("backfill", "completed", 3.0, {"events": 10}, pushgateway)
    success = _last_success(pushgateway, "backfill")
    assert success is not None
    assert push_run_metrics("backfill", "failed", 1.0, {}, pushgateway)
    assert _last_success(pushgateway, "backfill") == success
    body = urllib.request.urlopen(pushgateway + "/metrics", timeout=5).read().decode()  # noqa: S310 - loopback
    assert 'ailog_run_success{flow="backfill",group="run",instance="",job="ailog_backfill"} 0' in body


def test_no_pushgateway_never_fails_a_run():
    assert push_run_metrics("regular", "completed", 1.0, {}, None) is False
    assert push_run_metrics("regular", "completed", 1.0, {}, f"http://127.0.0.1:{free_port()}") is False


def test_alert_rules_pass_promtool_and_use_our_metrics():
    rules = ROOT / "deploy" / "prometheus" / "ailog-rules.yml"
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "ailog-dashboard.json").read_text())
    text = rules.read_text() + json.dumps(dashboard)
    from core.ops.metrics import FIGURES, OUTBOX_GAUGES

    known = {name for name, _ in FIGURES.values()} | {"ailog_run_success", "ailog_run_duration_seconds",
                                                       "ailog_run_last_success_timestamp_seconds",
                                                       "ailog_confluence_publish_success"} | set(OUTBOX_GAUGES)
    import re

    used = set(re.findall(r"ailog_[a-z_]+", text)) - {"ailog_regular"}
    assert used <= known, used - known
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


class Sink(FakeServer):
    def __init__(self):
        super().__init__()
        self.bodies: list[str] = []

    def handle(self, request):
        self.bodies.append(request["body"].decode())
        return Response(202, b"")


def test_automations_are_idempotent_and_fire_on_a_crashed_run(prefect_api):
    from prefect import flow
    from prefect.automations import Automation
    from prefect.blocks.webhook import Webhook
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed
    from pydantic import SecretStr

    from ailog.ops.automations import PREFIX, apply_automations

    with Sink() as sink:
        Webhook(method="POST", url=SecretStr(sink.url + "/teams"), allow_private_urls=True).save(
            "ailog-test-webhook", overwrite=True)
        block = Webhook.load("ailog-test-webhook")
        first = apply_automations(block._block_document_id)
        second = apply_automations(block._block_document_id)
        assert all(x.startswith("created") for x in first) and all(x.startswith("updated") for x in second)

        import asyncio

        async def ours():
            async with get_client() as client:
                return [a for a in await client.read_automations() if a.name.startswith(PREFIX)]

        names = [a.name for a in asyncio.run(ours())]
        assert len(names) == len(set(names)) == 6

        @flow(name="regular-crash-probe")
        def probe():
            return 1

        async def crash():
            async with get_client() as client:
                run = await client.create_flow_run(probe, tags=["ailog", "regular"])
                from prefect.states import Running

                await client.set_flow_run_state(run.id, Running(), force=True)
                await client.set_flow_run_state(run.id, Crashed(message="OOMKilled"), force=True)

        asyncio.run(crash())
        deadline = time.time() + 90
        while time.time() < deadline and not any("crashed" in b for b in sink.bodies):
            time.sleep(1)
        assert any("crashed" in b for b in sink.bodies), sink.bodies
        assert Automation.read(name=PREFIX + "crashed runs").enabled
