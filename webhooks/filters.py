"""The delivery log's filters (django-filter): by status, event and subscription."""

import django_filters
from django.utils.translation import gettext_lazy as _

from webhooks.models import Delivery, Event


class DeliveryFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        label=_("Status"), choices=Delivery.Status.choices, empty_label=_("All")
    )
    event = django_filters.ChoiceFilter(
        label=_("Event"), field_name="event_type", choices=Event.choices, empty_label=_("All")
    )
    subscription = django_filters.ChoiceFilter(
        label=_("Subscription"), field_name="subscription_id", empty_label=_("All")
    )

    class Meta:
        model = Delivery
        fields = ()

    def __init__(self, data=None, queryset=None, *, subscriptions, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.filters["subscription"].extra["choices"] = [
            (str(subscription.pk), subscription.url) for subscription in subscriptions
        ]
