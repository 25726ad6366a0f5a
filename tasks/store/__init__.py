"""Store: a window's counts replaced atomically in PostgreSQL, watermarks, runs."""

from tasks.store.day_reports import load_day_report, save_day_report
from tasks.store.runs import finish_run, start_run
from tasks.store.watermarks import advance_watermark, read_watermark
from tasks.store.window_counts import lock_window, replace_window_counts

__all__ = ["advance_watermark", "finish_run", "load_day_report", "lock_window", "read_watermark", "replace_window_counts",
           "save_day_report", "start_run"]
