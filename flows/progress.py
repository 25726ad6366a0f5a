"""Progress a person can see: a bar in the terminal and a progress artifact in the Prefect UI."""

from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def progress(description: str, total: int):
    """Yield an ``advance()`` callable that moves both the terminal bar and the UI artifact."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    artifact_id = None
    try:
        artifact_id = create_progress_artifact(progress=0.0, description=description)
    except Exception:  # noqa: S110 - no flow run context / API: the terminal bar is enough
        pass
    done = 0
    bar = None
    if sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=False)
        bar.start()
        task_id = bar.add_task(description, total=total)

    def advance(n: int = 1) -> None:
        nonlocal done
        done += n
        if bar is not None:
            bar.update(task_id, completed=done)
        if artifact_id is not None and total and (done == total or done % 8 == 0):
            try:
                update_progress_artifact(artifact_id=artifact_id, progress=100.0 * done / total)
            except Exception:  # noqa: S110 - progress is best effort
                pass

    try:
        yield advance
    finally:
        if bar is not None:
            bar.stop()
