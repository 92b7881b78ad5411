"""The filters of the surveys app's lists (django-filter): the support queue and the NPS
comments. Querysets (scope, select_related, order) come from surveys/queries.py; choice lists
are built from rows the page reads anyway, so filtering adds no query."""

import django_filters
from django.utils.translation import gettext_lazy as _

from surveys.models import Complaint, NpsGroup, SurveyResponse

OPEN = "open"


class ComplaintFilterSet(django_filters.FilterSet):
    """The support queue: status ("open" is every open status, and the default), store,
    category and who has the case (``stores`` and ``categories``: what the page lists)."""

    status = django_filters.ChoiceFilter(
        label=_("Status"),
        choices=[(OPEN, _("Open")), *Complaint.Status.choices, ("", _("All"))],
        empty_label=None,
        method="by_status",
    )
    store = django_filters.ChoiceFilter(
        label=_("Store"), field_name="store__code", empty_label=_("All")
    )
    category = django_filters.ChoiceFilter(
        label=_("Category"), field_name="category__code", empty_label=_("All")
    )
    assignee = django_filters.ChoiceFilter(
        label=_("Assignee"),
        choices=[("me", _("Me")), ("nobody", _("Nobody yet"))],
        empty_label=_("Anyone"),
        method="by_assignee",
    )

    class Meta:
        model = Complaint
        fields = ()

    def __init__(self, data=None, queryset=None, *, stores, categories, **kwargs):
        if data is not None and "status" not in data:
            data = data.copy()
            data["status"] = OPEN  # the queue opens on the cases still to work
        super().__init__(data, queryset, **kwargs)
        self.filters["store"].extra["choices"] = [(store.code, store.code) for store in stores]
        self.filters["category"].extra["choices"] = [
            (category.code, str(category)) for category in categories
        ]

    def by_status(self, cases, name, value):
        if value == OPEN:
            return cases.filter(status__in=Complaint.OPEN_STATUSES)
        return cases.filter(status=value)

    def by_assignee(self, cases, name, value):
        if value == "me":
            return cases.filter(assignee=self.request.user)
        return cases.filter(assignee__isnull=True)


class NpsCommentFilterSet(django_filters.FilterSet):
    """The comments under the NPS dashboard, by group (promoters, passives, detractors)."""

    group = django_filters.ChoiceFilter(
        label=_("Group"), choices=NpsGroup.choices, empty_label=_("All")
    )

    class Meta:
        model = SurveyResponse
        fields = ()
