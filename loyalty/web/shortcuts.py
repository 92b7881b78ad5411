"""What the pages of several apps share, so that no view module imports another app's views."""

import csv

from django.db.models import Exists, OuterRef
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect

from members import queries
from members.models import Member


def add_service_error(form, error):
    """Show a domain error on the form: under its field when it names one, else on top."""
    placed = False
    for field, problems in (error.fields or {}).items():
        if field in form.fields:
            for problem in problems:
                form.add_error(field, problem)
            placed = True
    if not placed:
        form.add_error(None, str(error.message))


def htmx_redirect(request, url):
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = url
        return response
    return redirect(url)


def scoped_member(request, card_number, *, with_merged=False):
    """The member behind the card if the user may see them (else 404); ``with_merged`` also
    says whether other cards were merged into it (``has_merged``), in the same query."""
    members = queries.members_for(request.user).select_related(
        "tier", "enrolled_store", "merged_into"
    )
    if with_merged:
        members = members.annotate(
            has_merged=Exists(Member.objects.filter(merged_into=OuterRef("pk")))
        )
    return get_object_or_404(members, card_number=card_number)


class _Echo:
    def write(self, value):
        return value


def stream_csv(filename, header, rows):
    """A CSV download written as it is read: the header, then each of ``rows`` (any iterable,
    so a generator over a large query never sits in memory)."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
