"""The filters of the member pages' lists (django-filter): what a list may be narrowed by, its
labels and its form errors, in one place. The querysets (scope, select_related, order) come
from members/queries.py."""

import django_filters
from django.utils.translation import gettext_lazy as _

from loyalty.models import EntryKind, LedgerEntry
from members import queries
from members.models import Member


class MemberFilterSet(django_filters.FilterSet):
    """The member list: what was typed (card, phone, e-mail or name) and the status."""

    q = django_filters.CharFilter(
        label=_("Phone, card, name or e-mail"), method="search", max_length=100
    )
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=Member.Status.choices, empty_label=_("All")
    )

    class Meta:
        model = Member
        fields = ()

    def search(self, members, name, value):
        return queries.search_members(members, value)


class LedgerEntryFilterSet(django_filters.FilterSet):
    """The points history on the member page, by kind of entry."""

    kind = django_filters.ChoiceFilter(
        label=_("Kind"), choices=EntryKind.choices, empty_label=_("All")
    )

    class Meta:
        model = LedgerEntry
        fields = ()
