import sys
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from members.imports import run_import
from members.models import ImportJob


class ImportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file (UTF-8, header row)")
        parser.add_argument(
            "--errors", help="where to write the error report (default: next to the file)"
        )

    def run(self, path, errors_path, **job_fields):
        source = Path(path)
        if not source.is_file():
            raise CommandError(f"no such file: {path}")
        with source.open("rb") as handle:
            job = ImportJob.objects.create(
                kind=self.kind,
                file=File(handle, name=source.name),
                original_name=source.name,
                **job_fields,
            )
        job = run_import(job)
        if job.status == ImportJob.Status.DONE:
            self.stdout.write(self.style.SUCCESS(job.message))
            return
        if job.error_report:
            report = Path(errors_path or f"{source}.errors.csv")
            report.write_text(job.error_report, encoding="utf-8")
            self.stderr.write(f"{job.error_count} row(s) with errors; report: {report}")
        self.stderr.write(job.message)
        sys.exit(1)
