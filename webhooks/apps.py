from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = _("Webhooks")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from loyalty.engine import webhook_events
        from webhooks.tasks import send_deliveries

        # After the commit of a change that wrote deliveries, a worker is told at once; if the
        # broker is down, the beat's sweep (deliver_webhooks every minute) sends them.
        webhook_events.on_event(send_deliveries)
