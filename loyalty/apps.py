from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty program")

    def ready(self):
        from loyalty.models import ApiKey, Store

        for model in (ApiKey, Store):
            uid = f"api-keys-changed-{model.__name__}"
            post_save.connect(_keys_changed, sender=model, dispatch_uid=uid)
            post_delete.connect(_keys_changed, sender=model, dispatch_uid=uid)


def _keys_changed(**kwargs):
    """An API key or a store changed: processes that remember keys must read them again."""
    from loyalty.engine.apikeys import keys_changed

    keys_changed()
