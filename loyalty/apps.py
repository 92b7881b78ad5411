from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty program")

    def ready(self):
        from loyalty.engine import referrals
        from loyalty.models import ApiKey, Store
        from loyalty.tasks import send_credit_referrer

        referrals.on_reward(send_credit_referrer)

        for model in (ApiKey, Store):
            uid = f"api-keys-changed-{model.__name__}"
            post_save.connect(_keys_changed, sender=model, dispatch_uid=uid)
            post_delete.connect(_keys_changed, sender=model, dispatch_uid=uid)


class LoyaltyAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the product's site (administrators only) as ``admin.site``."""

    default = False  # named in INSTALLED_APPS; LoyaltyConfig stays this module's app

    def ready(self):
        super().ready()
        from django.contrib.admin.templatetags import admin_list

        # Django writes a yes/no icon's alt text as Python's True/False, in English on a Russian
        # page; every admin view takes the icon from this one function.
        admin_list._boolean_icon = _boolean_icon

    default_site = "loyalty.web.admin_base.LoyaltyAdminSite"


def _boolean_icon(value):
    from django.templatetags.static import static
    from django.utils.html import format_html

    icon, text = {True: ("yes", _("Yes")), False: ("no", _("No")), None: ("unknown", _("Unknown"))}[
        value
    ]
    return format_html('<img src="{}" alt="{}">', static(f"admin/img/icon-{icon}.svg"), text)


def _keys_changed(**kwargs):
    """An API key or a store changed: processes that remember keys must read them again."""
    from loyalty.engine.apikeys import keys_changed

    keys_changed()
