"""The data steps of the campaign migrations: existing campaigns keep their single offer and
their results window."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("campaigns", "0002_segments_campaigns")]
SENT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_sent_campaigns_get_one_variant_and_their_window(stores):
    apps = migrate(BEFORE)
    try:
        Campaign = apps.get_model("campaigns", "Campaign")
        Recipient = apps.get_model("campaigns", "CampaignRecipient")
        Member = apps.get_model("members", "Member")
        segment = apps.get_model("campaigns", "Segment").objects.create(name="All")
        tier = apps.get_model("loyalty", "Tier").objects.order_by("threshold").first()
        campaign = Campaign.objects.create(
            name="Old", segment=segment, kind="message", status="done", sent_at=SENT,
            results_days=30,
        )  # fmt: skip
        for number, group in enumerate(["test", "control"]):
            member = Member.objects.create(
                card_number=f"990000000000{number}", phone=f"+7916000990{number}",
                referral_code=f"MIG{number}", enrolled_at=SENT, tier_id=tier.pk,
            )  # fmt: skip
            Recipient.objects.create(
                campaign=campaign, member=member, group=group, batch="b", created_at=SENT
            )

        apps = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        Campaign = apps.get_model("campaigns", "Campaign")
        Recipient = apps.get_model("campaigns", "CampaignRecipient")
        variants = dict(Recipient.objects.values_list("group", "variant"))
        assert variants == {"test": 1, "control": 0}
        migrated = Campaign.objects.get(pk=campaign.pk)
        assert (migrated.results_from, migrated.results_until) == (SENT, SENT + timedelta(days=30))
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
