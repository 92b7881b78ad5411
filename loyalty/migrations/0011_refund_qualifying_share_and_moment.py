"""A refund keeps what it took off the purchase's qualifying amount, and its moment is the
service's ``now``: the tier job reads refunds as events of the grace period."""

from decimal import ROUND_HALF_UP, Decimal

import django.utils.timezone
from django.db import migrations, models

CENT = Decimal("0.01")


def fill_shares(apps, schema_editor):
    """The share of each earlier refund, by the refund service's cumulative rule."""
    Refund = apps.get_model("loyalty", "Refund")
    refunds = Refund.objects.select_related("purchase").order_by("purchase_id", "created_at", "id")
    purchase_id, refunded = None, Decimal("0")
    for refund in refunds.iterator():
        purchase = refund.purchase
        if purchase.pk != purchase_id:
            purchase_id, refunded = purchase.pk, Decimal("0")

        def left(total, purchase=purchase):
            share = purchase.paid_amount * (purchase.amount - total) / purchase.amount
            return share.quantize(CENT, rounding=ROUND_HALF_UP)

        share = left(refunded) - left(refunded + refund.amount)
        refunded += refund.amount
        Refund.objects.filter(pk=refund.pk).update(qualifying_amount=share)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0010_lot_member_pending_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="qualifying_amount",
            field=models.DecimalField(decimal_places=2, default=0, max_digits=12),
        ),
        migrations.AlterField(
            model_name="refund",
            name="created_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now, verbose_name="refunded at"
            ),
        ),
        migrations.RunPython(fill_shares, migrations.RunPython.noop),
    ]
