"""Import and export pages: CSV in through Celery with a live progress bar, CSV out streamed."""

import csv

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.engine.db import replica_reads
from loyalty.web.access import is_fragment, require
from loyalty.web.taskqueue import delay_on_commit
from members import queries
from members.imports import member_export_rows, purchase_export_rows
from members.models import ImportJob
from members.tasks import run_import_job

MAX_UPLOAD = 200 * 1024 * 1024
WAITING_FOR_QUEUE = _(
    "The task queue is unreachable just now: the import is saved and starts by itself "
    "once the queue is back."
)


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportJob.Kind.choices)
    file = forms.FileField(label=_("CSV file"))
    earn_points = forms.BooleanField(
        label=_("Purchases earn points (off: history for analytics only)"), required=False
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError(_("The file is larger than 200 MB."))
        if not upload.name.lower().endswith((".csv", ".txt")):
            raise forms.ValidationError(_("Upload a .csv file."))
        return upload


@require("loyalty.manage_program")
def import_start(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            job = ImportJob.objects.create(
                kind=form.cleaned_data["kind"],
                file=form.cleaned_data["file"],
                original_name=form.cleaned_data["file"].name[:255],
                earn_points=form.cleaned_data["earn_points"],
                created_by=request.user,
            )
            handoff = delay_on_commit(run_import_job, job.pk, record=job)
        if handoff.waiting:
            messages.warning(request, WAITING_FOR_QUEUE)
        return redirect("members:import-detail", pk=job.pk)
    jobs = ImportJob.objects.select_related("created_by")[:20]
    return render(request, "members/import.html", {"form": form, "jobs": jobs})


@require("loyalty.manage_program")
def import_detail(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    template = "members/import_detail.html"
    if is_fragment(request):
        template += "#progress"
    return render(request, template, {"job": job})


@require("loyalty.manage_program")
def import_errors(request, pk):
    job = get_object_or_404(ImportJob, pk=pk)
    response = HttpResponse(job.error_report, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response


class _Echo:
    def write(self, value):
        return value


def _csv_response(rows, name):
    writer = csv.writer(_Echo())

    def stream():
        # Exports read from the replica when there is one (the generator runs after the view
        # returns, so the choice is made here, around the iteration itself).
        with replica_reads():
            for row in rows:
                yield writer.writerow(row)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


# Every member's phone and e-mail in one file: for administrators only (the export imports
# again, so it keeps its contact columns), like the import and export page that links to it.
@require("loyalty.manage_program")
def export_members(request):
    # An erased member has nothing to import again (no phone): left out.
    members = queries.members_for(request.user).filter(erased_at__isnull=True).order_by("id")
    return _csv_response(member_export_rows(members), "members")


@require("loyalty.view_members")
def export_purchases(request):
    purchases = queries.purchases_for(request.user).order_by("id")
    return _csv_response(purchase_export_rows(purchases), "purchases")
