"""Messages in the admin: texts and settings changed here (audited), the outbox and log read."""

from django.contrib import admin
from django.template.defaultfilters import linebreaks
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from loyalty.web.admin_base import AuditedAdmin, ReadOnlyAdmin, SingletonAdmin, shown_as_code
from messaging.models import Message, MessageTemplate, MessagingSettings, Outbox


@admin.register(MessageTemplate)
class MessageTemplateAdmin(AuditedAdmin):
    audit_action = "message_template"
    fields = ("purpose", "channel", "language", "subject", "body")
    list_display = ("purpose", "channel", "language", "subject")
    list_filter = ("purpose", "channel", "language")


@admin.register(MessagingSettings)
class MessagingSettingsAdmin(SingletonAdmin):
    audit_action = "messaging"
    fields = ("quiet_from", "quiet_until", "cap_messages", "cap_days")
    list_display = ("__str__", "quiet_from", "quiet_until", "cap_messages", "cap_days")


@admin.register(Outbox)
class OutboxAdmin(ReadOnlyAdmin):
    capability = "loyalty.run_jobs"
    list_display = ("created_at", "member", "purpose", "status", "not_before", "attempts")
    list_select_related = ("member",)
    list_filter = ("status", "purpose")
    raw_id_fields = ("member",)
    exclude = ("context", "key")
    readonly_fields = ("key_code", "context_code")
    key_code = shown_as_code(Outbox, "key")
    context_code = shown_as_code(Outbox, "context")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "member", "purpose", "channel", "status", "reason", "sent_at")
    list_select_related = ("member",)
    list_filter = ("status", "channel", "purpose")
    search_fields = ("=member__card_number",)
    raw_id_fields = ("member", "outbox")
    exclude = ("subject", "body", "address", "provider_id", "language")
    readonly_fields = ("address_code", "provider_id_code", "language_code", "text")
    address_code = shown_as_code(Message, "address")
    provider_id_code = shown_as_code(Message, "provider_id")
    language_code = shown_as_code(Message, "language")

    @admin.display(description=_("text"))
    def text(self, message):
        """The message as sent, marked with the member's language (it may not be the page's)."""
        return format_html(
            '<div lang="{}"><p><strong>{}</strong></p>{}</div>',
            message.language,
            message.subject,
            linebreaks(message.body),
        )
