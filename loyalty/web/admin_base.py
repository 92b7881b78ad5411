"""The Django admin: the administrator's second way in (SPEC.md section 1: "browser + admin").

Only administrators reach it (``LoyaltyAdminSite.has_permission``). Two kinds of model admin:

* ``ReadOnlyAdmin`` shows a table and never changes it: the ledger and every history are
  append-only, and members, campaigns, surveys and complaints change only through their pages,
  whose services hold the rules (an admin page links to them).
* ``AuditedAdmin`` adds and changes rows through the service the back-office page calls
  (``save_with_audit`` with the page's own form), so the admin validates and audits the same way.

Nothing is deleted here: stores, plans and rules have an "active" flag instead.
"""

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from loyalty.engine.administration import save_with_audit

ADMINISTRATION = "loyalty.manage_program"


def as_code(value):
    """A code, a key or a JSON document: shown as code, for it is not text to translate."""
    if value in (None, "", {}, []):
        return "—"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        return format_html("<pre><code>{}</code></pre>", text)
    return format_html("<code>{}</code>", value)


def shown_as_code(model, name):
    """A column or read-only field (``<name>_code``) showing a model field as code."""

    @admin.display(description=model._meta.get_field(name).verbose_name, ordering=name)
    def show(_admin, obj):
        return as_code(getattr(obj, name))

    return show


def shown_in(language, model, name):
    """A column or read-only field showing text written in ``language`` (lang="…" on it)."""

    @admin.display(description=model._meta.get_field(name).verbose_name)
    def show(_admin, obj):
        text = getattr(obj, name)
        return format_html('<span lang="{}">{}</span>', language, text) if text else "—"

    return show


@admin.display(description=_("name"))
def name_shown(_admin, obj):
    """The name in the page's language (a tier, plan, category or survey has one per language)."""
    return obj.display_name()


class LoyaltyAdminSite(admin.AdminSite):
    site_header = _("Loyalty program administration")
    site_title = _("Loyalty program administration")
    index_title = _("Program data")
    site_url = "/"

    def has_permission(self, request):
        return request.user.is_active and request.user.has_perm(ADMINISTRATION)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A table an administrator may read and search, never change."""

    capability = ADMINISTRATION
    show_full_result_count = False  # a second COUNT(*) over the ledger for every search
    list_per_page = 50

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(self.capability)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(ADMINISTRATION)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedAdmin(ReadOnlyAdmin):
    """Added and changed through ``save_service``: by default the page's ``save_with_audit``."""

    audit_action = None  # the audit log's action prefix, as the back-office page writes it

    def has_add_permission(self, request, obj=None):
        return self.has_view_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self.form is not forms.ModelForm:
            # The back-office page's own form, with the fields it saves: the admin would save
            # every field it shows (a password field too, as typed).
            kwargs["fields"] = None
        return super().get_form(request, obj, change, **kwargs)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django's admin wraps a save in its own transaction; a service is the unit of work
        # (``atomic(durable=True)``) and opens the transaction itself.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        self.save_service(request, form)

    def save_related(self, request, form, formsets, change):
        """The service saved the form whole, its many-to-many fields included."""

    def save_service(self, request, form):
        save_with_audit(form=form, staff=request.user, action=self.audit_action)


class SingletonAdmin(AuditedAdmin):
    """The one settings row (id 1): changed, never added twice."""

    def has_add_permission(self, request, obj=None):
        return False
