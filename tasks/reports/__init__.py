"""Reports: the daily report JSON, CSV exports, charts and the human-readable daily report."""
