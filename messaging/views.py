"""Back-office pages of this app: background jobs, a member's messages, partner settlement."""

import csv
import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loyalty.access import is_fragment, require
from loyalty.engine.partners import settlement
from loyalty.jobs import JOBS
from loyalty.models import JobRun
from loyalty.taskqueue import delay_on_commit
from members.views import scoped_member
from messaging.models import Message


def _last_runs():
    """The newest run of each job: one query per job name, and there are six."""
    return {
        name: JobRun.objects.filter(job=name).order_by("-started_at", "-id").first()
        for name in JOBS
    }


@require("loyalty.run_jobs")
def job_list(request):
    runs = Paginator(
        JobRun.objects.select_related("started_by").order_by("-started_at", "-id"), 25
    ).get_page(request.GET.get("page"))
    last = _last_runs()
    context = {
        "jobs": [(job, last[name]) for name, job in JOBS.items()],
        "runs": runs,
        "any_running": any(run and run.status == JobRun.Status.RUNNING for run in last.values()),
    }
    if is_fragment(request):
        return render(request, "messaging/job_list.html#runs", context)
    return render(request, "messaging/job_list.html", context)


@require("loyalty.run_jobs")
@require_POST
def job_run_now(request, name):
    if name not in JOBS:
        raise Http404
    from loyalty.jobs.tasks import run_job

    # After commit, so the worker never misses the request; the run records itself when it starts.
    handoff = delay_on_commit(run_job, name, trigger=JobRun.Trigger.BUTTON, user_id=request.user.pk)
    if handoff.waiting:
        # Nothing is recorded for a press of the button: the job runs at its scheduled time.
        messages.warning(
            request,
            _(
                "The task queue is unreachable just now, so %(job)s did not start. It runs at "
                "its scheduled time once the queue is back, or press the button again then."
            )
            % {"job": name},
        )
    else:
        messages.success(request, _("%(job)s will start in a moment.") % {"job": name})
    return redirect("messaging:job-list")


@require("loyalty.view_members")
def member_messages(request, card_number):
    """The member's message log (a fragment for the member page, or a page of its own)."""
    member = scoped_member(request, card_number)
    page = Paginator(
        Message.objects.filter(member=member).order_by("-created_at", "-id"), 20
    ).get_page(request.GET.get("page"))
    context = {"member": member, "page": page}
    if is_fragment(request):
        return render(request, "messaging/member_messages.html#log", context)
    return render(request, "messaging/member_messages.html", context)


def _month(value):
    try:
        moment = datetime.datetime.strptime(value or "", "%Y-%m")
    except ValueError:
        today = timezone.localdate()
        first = today.replace(day=1)
        previous = first - datetime.timedelta(days=1)
        return previous.year, previous.month
    return moment.year, moment.month


@require("loyalty.manage_program")
def partner_settlement(request):
    year, month = _month(request.GET.get("month"))
    rows = settlement(year, month)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="partner-settlement-{year}-{month:02d}.csv"'
        )
        writer = csv.writer(response)
        writer.writerow(
            ["partner", "name", "points_issued", "points_spent", "net_points", "net_value"]
        )
        for row in rows:
            writer.writerow(
                [row.store.code, row.store.name, row.issued, row.spent, row.net, row.net_value]
            )
        return response
    return render(
        request,
        "messaging/partner_settlement.html",
        {"rows": rows, "month": f"{year}-{month:02d}"},
    )
