"""The scheduled jobs of SPEC section 6, by name: what ``runjob NAME`` and the beat run.

Each job is a function ``job(*, as_of, run=None, batch_size=...)``: set-based SQL in batches,
safe to run twice and to interrupt. ``loyalty.jobs.runner.run_job`` records the run and holds the
job's lock.
"""

from dataclasses import dataclass
from typing import Any

from django.utils.functional import cached_property
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Job:
    name: str
    path: str
    description: Any

    @cached_property
    def function(self):
        return import_string(self.path)


JOBS = {
    job.name: job
    for job in [
        Job(
            "expire_points",
            "loyalty.engine.expiry.expire_points",
            _("Expire points past expiry"),
        ),
        Job(
            "expiry_reminders",
            "loyalty.engine.reminders.expiry_reminders",
            _("Remind members of points expiring soon"),
        ),
        Job(
            "activate_points",
            "loyalty.engine.reminders.activate_points",
            _("Tell members their pending points are available"),
        ),
        Job(
            "reevaluate_tiers",
            "loyalty.engine.tiers.reevaluate_tiers",
            _("Re-qualify tiers (downgrade after the grace period)"),
        ),
        Job(
            "birthday_offers",
            "loyalty.engine.birthdays.birthday_offers",
            _("Birthday points for members with consent"),
        ),
        Job(
            "renew_memberships",
            "loyalty.engine.memberships.renew_memberships",
            _("Renew or lapse paid memberships"),
        ),
        Job(
            "dispatch_nps",
            "surveys.jobs.dispatch_nps",
            _("Send NPS surveys after purchases, and one reminder"),
        ),
        Job(
            "campaign_surveys",
            "surveys.jobs.campaign_surveys",
            _("Send the NPS survey of campaigns whose results window has ended"),
        ),
        Job(
            "win_back",
            "campaigns.tasks.win_back",
            _("Send the day's run of each win-back campaign"),
        ),
        Job(
            "send_campaigns",
            "campaigns.tasks.send_campaigns",
            _("Start scheduled campaign sends, in chunks"),
        ),
        Job(
            "refresh_analytics",
            "analytics.jobs.refresh_analytics",
            _("Rebuild the daily figures and snapshots the analytics dashboard reads"),
        ),
    ]
}
