import inspect

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from loyalty.jobs import JOBS
from loyalty.jobs.runner import run_job
from loyalty.models import JobRun


def as_of_time(value):
    moment = parse_datetime(value)
    if moment is None:
        raise CommandError(
            f"--as-of must be an ISO time such as 2025-02-28T09:00:00+03:00: {value}"
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = (
        "Run one background job now, recorded like a scheduled run. --as-of evaluates it as of "
        "that moment (to re-run a missed night); a time without a zone is in TIME_ZONE."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(JOBS))
        parser.add_argument("--as-of", dest="as_of", help="ISO time, e.g. 2025-02-28T09:00+03:00")
        parser.add_argument("--batch-size", dest="batch_size", type=int)
        parser.add_argument(
            "--full",
            action="store_true",
            help="rebuild everything rather than the recent days (refresh_analytics)",
        )

    def handle(self, *args, name, as_of=None, batch_size=None, full=False, **options):
        extra = {"batch_size": batch_size} if batch_size else {}
        if full:
            if "full" not in inspect.signature(JOBS[name].function).parameters:
                raise CommandError(f"--full does not apply to {name}")
            extra["full"] = True
        try:
            run = run_job(
                name,
                as_of=as_of_time(as_of) if as_of else None,
                trigger=JobRun.Trigger.COMMAND,
                **extra,
            )
        except Exception as exc:
            raise CommandError(f"{name} failed: {exc}") from exc
        if run.status == JobRun.Status.SKIPPED:
            raise CommandError(f"{name} is already running (run {run.pk} skipped)")
        details = ", ".join(f"{key} {value}" for key, value in sorted(run.counts.items()))
        self.stdout.write(
            f"{name} as of {run.as_of.isoformat()}: {run.rows} rows in {run.batches} batch(es)"
            f"{' (' + details + ')' if details else ''}, {run.duration.total_seconds():.2f} s"
        )
