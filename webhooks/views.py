"""The webhook pages (administrator: ``loyalty.manage_api_keys``, like the API keys):
subscriptions, the delivery log with its resend button, and the signing scheme."""

import contextlib

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from loyalty.engine.errors import LoyaltyError
from loyalty.web.access import require
from webhooks import services
from webhooks.filters import DeliveryFilterSet
from webhooks.forms import SubscriptionForm
from webhooks.models import Delivery, Subscription
from webhooks.tasks import send_deliveries

PERMISSION = "loyalty.manage_api_keys"


@require(PERMISSION)
def subscription_list(request):
    subscriptions = Subscription.objects.select_related("created_by").order_by("id")
    return render(request, "webhooks/subscription_list.html", {"subscriptions": subscriptions})


def _show_secret(request, subscription, title):
    """The secret is shown in the answer to the POST that made it, and never again."""
    return render(request, "webhooks/secret.html", {"subscription": subscription, "title": title})


def _form_page(request, form, title, subscription=None):
    return render(
        request,
        "webhooks/subscription_form.html",
        {"form": form, "title": title, "subscription": subscription},
    )


@require(PERMISSION)
def subscription_create(request):
    form = SubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription = services.create_subscription(staff=request.user, **form.cleaned_data)
        except LoyaltyError as error:
            form.add_error(None, error.message)
        else:
            return _show_secret(request, subscription, _("Webhook created"))
    return _form_page(request, form, _("New webhook"))


@require(PERMISSION)
def subscription_edit(request, pk):
    subscription = get_object_or_404(Subscription, pk=pk)
    form = SubscriptionForm(request.POST or None, instance=subscription)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_subscription(
                subscription_id=pk, staff=request.user, **form.cleaned_data
            )
        except LoyaltyError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Webhook saved."))
            return redirect("webhooks:subscription-list")
    return _form_page(request, form, _("Edit webhook"), subscription)


@require(PERMISSION)
@require_POST
def subscription_rotate(request, pk):
    get_object_or_404(Subscription, pk=pk)
    subscription = services.rotate_secret(subscription_id=pk, staff=request.user)
    return _show_secret(request, subscription, _("New signing secret"))


@require(PERMISSION)
@require_POST
def subscription_delete(request, pk):
    get_object_or_404(Subscription, pk=pk)
    services.delete_subscription(subscription_id=pk, staff=request.user)
    messages.success(request, _("Webhook deleted."))
    return redirect("webhooks:subscription-list")


@require(PERMISSION)
def delivery_list(request):
    subscriptions = list(Subscription.objects.order_by("id"))
    deliveries = Delivery.objects.select_related("subscription").order_by("-created_at", "-id")
    filterset = DeliveryFilterSet(request.GET, deliveries, subscriptions=subscriptions)
    shown = filterset.qs if filterset.is_valid() else deliveries.none()
    page = Paginator(shown, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "webhooks/delivery_list.html",
        {"filter": filterset, "page": page, "query": query.urlencode()},
    )


@require(PERMISSION)
@require_POST
def delivery_resend(request, pk):
    get_object_or_404(Delivery, pk=pk)
    services.resend_delivery(delivery_id=pk, staff=request.user)
    # The broker may be down: the beat's round sends it then.
    with contextlib.suppress(Exception):
        send_deliveries()
    messages.success(request, _("The delivery will be sent again in a moment."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse("webhooks:delivery-list")
    return redirect(back or reverse("webhooks:delivery-list"))


@require(PERMISSION)
def signing(request):
    return render(request, "webhooks/signing.html")
