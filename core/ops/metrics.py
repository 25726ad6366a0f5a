"""Per-run metrics pushed to a Prometheus Pushgateway (the convention for batch jobs).

Two groups per flow: `job=ailog_<flow>, group=run` is replaced by every run (outcome, duration, windows processed,
lag behind real time, events read, bad documents, problems, peaks, alerts raised/queued, messages delivered,
Confluence status, DB write latency); `job=ailog_<flow>, group=success` is replaced only by a successful run (when
it finished). A failed run therefore never erases the last success that the "has not run for 30 minutes" alerts
read. A missing or unreachable Pushgateway never fails a run: it is logged as a warning.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

log = logging.getLogger("ailog.ops.metrics")
FIGURES = {
    "windows": ("ailog_windows_processed", "Windows processed by the run"),
    "events": ("ailog_events_read", "Events read by the run"),
    "bad_documents": ("ailog_bad_documents", "Bad documents skipped by the run"),
    "peaks": ("ailog_peaks", "Peaks detected by the run"),
    "alerts": ("ailog_alerts_sent", "Critical alerts raised by the run"),
    "alerts_queued": ("ailog_alerts_queued", "Alerts queued in the outbox by the run"),
    "delivered": ("ailog_messages_delivered", "Teams messages delivered by the run (this run's and queued ones)"),
    "problems_new": ("ailog_problems_new", "New problems registered by the run"),
    "db_write_seconds": ("ailog_db_write_seconds", "Time spent writing windows to PostgreSQL"),
    "lag_seconds": ("ailog_lag_seconds", "Seconds between the end of the newest processed window and now"),
    "windows_delayed": ("ailog_windows_delayed", "Newest windows left for a later run because they looked incomplete"),
    "windows_rechecked": ("ailog_windows_rechecked", "Earlier windows re-read by the run for late logs"),
    "skipped_locked": ("ailog_run_skipped_locked", "1 if the run did nothing because another run held the lock"),
}


def build_registry(flow: str, outcome: str, duration_s: float, figures: dict) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = ["flow"]
    Gauge("ailog_run_duration_seconds", "Duration of the last run", labels, registry=registry).labels(flow).set(duration_s)
    Gauge("ailog_run_success", "1 if the last run succeeded, else 0", labels, registry=registry).labels(flow).set(
        1 if outcome == "completed" else 0)
    Gauge("ailog_run_last_timestamp_seconds", "When the last run finished", labels, registry=registry).labels(flow).set(
        time.time())
    for key, (name, doc) in FIGURES.items():
        value = figures.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            Gauge(name, doc, labels, registry=registry).labels(flow).set(value)
    confluence = figures.get("confluence")
    if confluence is not None:
        ok = 0 if isinstance(confluence, str) and confluence.startswith("failed") else 1
        Gauge("ailog_confluence_publish_success", "1 if the last Confluence publish succeeded", labels,
              registry=registry).labels(flow).set(ok)
    return registry


def success_registry(flow: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("ailog_run_last_success_timestamp_seconds", "When the last successful run finished", ["flow"],
          registry=registry).labels(flow).set(time.time())
    return registry


def push_run_metrics(flow: str, outcome: str, duration_s: float, figures: dict, url: str | None) -> bool:
    """Push this run's metrics; a no-op without AILOG_PUSHGATEWAY_URL. Returns whether it pushed."""
    if not url:
        return False
    try:
        push_to_gateway(url, job=f"ailog_{flow}", grouping_key={"group": "run"},
                        registry=build_registry(flow, outcome, duration_s, figures), timeout=10)
        if outcome == "completed":
            push_to_gateway(url, job=f"ailog_{flow}", grouping_key={"group": "success"},
                            registry=success_registry(flow), timeout=10)
        return True
    except Exception as exc:  # metrics must never fail a run
        log.warning("could not push metrics to the Pushgateway (%s)", type(exc).__name__)
        return False


OUTBOX_GAUGES = {
    "ailog_outbox_pending": "Messages queued in the outbox, not yet delivered",
    "ailog_outbox_dead": "Messages given up (refused, or undelivered within their budget)",
    "ailog_outbox_last_delivery_timestamp_seconds": "When the outbox was last delivered",
}


def push_outbox_metrics(pending: int, dead: int, url: str | None) -> bool:
    """The outbox's state after a delivery (any flow): queued and dead-lettered messages (job=ailog_outbox)."""
    if not url:
        return False
    registry = CollectorRegistry()
    for (name, doc), value in zip(OUTBOX_GAUGES.items(), (pending, dead, time.time()), strict=True):
        Gauge(name, doc, registry=registry).set(value)
    try:
        push_to_gateway(url, job="ailog_outbox", registry=registry, timeout=10)
        return True
    except Exception as exc:  # metrics must never fail a run
        log.warning("could not push outbox metrics to the Pushgateway (%s)", type(exc).__name__)
        return False
