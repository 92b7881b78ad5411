"""The filters of the engine's back-office lists (django-filter): what a list may be narrowed
by, its labels and its form errors. The querysets (scope, select_related, order) stay with the
views' queries; a choice list is built from rows the page reads anyway, so filtering adds no
query."""

import django_filters
from django.utils.translation import gettext_lazy as _

from loyalty.models import AuditLog, Purchase


class AuditLogFilterSet(django_filters.FilterSet):
    """The audit log: an action or its prefix ("points." is every points action), and who."""

    action = django_filters.CharFilter(label=_("Action"), lookup_expr="startswith", max_length=64)
    actor = django_filters.CharFilter(
        label=_("Who (username)"), field_name="actor__username", max_length=150
    )

    class Meta:
        model = AuditLog
        fields = ()


class PurchaseFilterSet(django_filters.FilterSet):
    """The purchase list, by one of the user's stores (``stores``: the stores the page lists)."""

    store = django_filters.ChoiceFilter(
        label=_("Store"), field_name="store__code", empty_label=_("All my stores")
    )

    class Meta:
        model = Purchase
        fields = ()

    def __init__(self, data=None, queryset=None, *, stores, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.filters["store"].extra["choices"] = [
            (store.code, f"{store.code} · {store.name}") for store in stores
        ]
