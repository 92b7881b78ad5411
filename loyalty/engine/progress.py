"""A job run's progress: what the Jobs page shows while a run works, batch by batch."""

import time

from loyalty.models import JobRun

# Progress is written at most this often: a commit per batch would cost more than a small batch.
CHECKPOINT_SECONDS = 1.0


def checkpoint(run, rows, **counts):
    """Record one finished batch of a run; the row is updated at most once a second (its own
    autocommitted write, visible to the Jobs page at once) and always when the run ends."""
    if run is None:
        return
    run.rows += rows
    run.batches += 1
    for name, value in counts.items():
        run.counts[name] = run.counts.get(name, 0) + value
    now = time.monotonic()
    if now - getattr(run, "_saved_at", 0) >= CHECKPOINT_SECONDS:
        run._saved_at = now
        JobRun.objects.filter(pk=run.pk).update(
            rows=run.rows, batches=run.batches, counts=run.counts
        )
