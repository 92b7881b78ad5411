"""Purchases in the back-office: a store manager records or refunds a receipt for their own
stores, through the same services the API uses."""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.access import require
from loyalty.engine.errors import LoyaltyError
from loyalty.engine.purchases import record_purchase, refund_purchase
from loyalty.models import Channel, Store
from members import queries
from members.views import add_service_error


class PurchaseForm(forms.Form):
    store = forms.ModelChoiceField(label=gettext_lazy("Store"), queryset=Store.objects.none())
    external_id = forms.CharField(label=gettext_lazy("Receipt number"), max_length=64)
    card_number = forms.CharField(
        label=gettext_lazy("Card number (empty for an anonymous purchase)"),
        max_length=13,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    amount = forms.DecimalField(
        label=gettext_lazy("Amount"), max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    redeem_points = forms.IntegerField(
        label=gettext_lazy("Points to spend"), min_value=0, initial=0, required=False
    )
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=Channel.choices)
    coupon_code = forms.CharField(label=gettext_lazy("Coupon"), max_length=64, required=False)

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("Amount to refund"),
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
    )


@require("loyalty.view_members")
def purchase_list(request):
    purchases = queries.purchases_for(request.user).select_related("store", "member")
    store_code = request.GET.get("store", "")
    if store_code:
        purchases = purchases.filter(store__code=store_code)
    # No COUNT over every receipt (0.7-1.3 s at 10M): one row more says whether an older page
    # exists.
    page = queries.HistoryPage(
        purchases.order_by("-occurred_at", "-id"), request.GET.get("page"), 50
    )
    return render(
        request,
        "loyalty/purchase_list.html",
        {"page": page, "stores": queries.stores_for(request.user), "store_code": store_code},
    )


@require("loyalty.record_purchase")
def purchase_create(request):
    stores = queries.stores_for(request.user).filter(is_active=True)
    initial = {"card_number": request.GET.get("card", ""), "channel": "store"}
    only_stores = list(stores[:2])
    if len(only_stores) == 1:
        # A manager of one store records every receipt there: nothing to choose.
        initial["store"] = only_stores[0]
    form = PurchaseForm(request.POST or None, stores=stores, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        card = data["card_number"].strip() or None
        if card and not queries.members_for(request.user).filter(card_number=card).exists():
            form.add_error("card_number", _("No member you can see has this card number."))
        else:
            try:
                outcome = record_purchase(
                    store=data["store"],
                    external_id=data["external_id"],
                    card_number=card,
                    amount=data["amount"],
                    occurred_at=timezone.now(),
                    channel=data["channel"],
                    redeem_points=data["redeem_points"] or 0,
                    coupon_code=data["coupon_code"],
                    staff=request.user,
                )
            except LoyaltyError as error:
                add_service_error(form, error)
            else:
                body = outcome.body
                messages.success(
                    request,
                    _("Purchase %(receipt)s recorded: %(earned)s points earned.")
                    % {"receipt": body["external_id"], "earned": body["earned_points"]},
                )
                if card:
                    return redirect("members:member-detail", card_number=card)
                return redirect("purchases:purchase-list")
    return render(request, "loyalty/purchase_form.html", {"form": form})


@require("loyalty.record_purchase")
def purchase_refund(request, pk):
    purchase = get_object_or_404(
        queries.purchases_for(request.user).select_related("store", "member"), pk=pk
    )
    left = purchase.amount - purchase.refunded_amount
    form = RefundForm(request.POST or None, initial={"amount": left})
    if request.method == "POST" and form.is_valid():
        try:
            outcome = refund_purchase(
                store=purchase.store,
                external_id=purchase.external_id,
                refund_id=f"BO-{uuid.uuid4().hex[:12]}",
                amount=form.cleaned_data["amount"],
                staff=request.user,
            )
        except LoyaltyError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request,
                _("Refunded: %(reversed)s points reversed, %(returned)s returned.")
                % {
                    "reversed": outcome.body["reversed_points"],
                    "returned": outcome.body["returned_points"],
                },
            )
            if purchase.member:
                return redirect("members:member-detail", card_number=purchase.member.card_number)
            return redirect("purchases:purchase-list")
    return render(
        request, "loyalty/purchase_refund.html", {"form": form, "purchase": purchase, "left": left}
    )
