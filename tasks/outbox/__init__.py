"""The notification outbox: written with the data, delivered afterwards, retried by the next run, never lost."""

from tasks.outbox.outbox import DeliveryReport, deliver_pending, enqueue, enqueue_teams, notifications_enabled

__all__ = ["DeliveryReport", "deliver_pending", "enqueue", "enqueue_teams", "notifications_enabled"]
