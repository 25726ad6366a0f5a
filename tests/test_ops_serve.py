"""`ailog serve` builds the three local deployments on the schedules of prefect.yaml."""

from ailog.commands.serve import build_deployments


def test_serve_builds_three_scheduled_deployments():
    backfill, regular, publish = build_deployments(["/data/logs.ndjson"])
    assert backfill.schedules[0].schedule.cron == "0 9 * * *"
    assert regular.schedules[0].schedule.cron == "5-59/15 * * * *"
    assert regular.parameters == {"input_paths": ["/data/logs.ndjson"]}
    assert not publish.schedules
