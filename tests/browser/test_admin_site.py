"""The Django admin in a real Chromium, as the administrator: every table and a row of each, no
English in Russian and no accessibility problem in either language (as tests/browser/
test_every_page.py checks the back-office's own pages)."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.browser.test_every_page import VISIBLE_TEXT, english_on, seed
from tests.helpers import accessibility_violations, describe_violations

pytestmark = pytest.mark.browser


def admin_urls():
    """The admin's front page, each table's list and add form, and the page of its first row."""
    urls = [reverse("admin:index")]
    for model in sorted(admin.site._registry, key=lambda model: model.__name__):
        opts = model._meta
        if opts.app_label == "auth":
            continue  # Django's own group admin: superusers only
        base = f"admin:{opts.app_label}_{opts.model_name}"
        urls.append(reverse(f"{base}_changelist"))
        row = model.objects.order_by("pk").first()
        if row is not None:
            urls.append(reverse(f"{base}_change", args=[row.pk]))
    urls.append(reverse("admin:loyalty_store_add"))
    return urls


def test_the_admin_speaks_russian_and_passes_axe(browser, live_server, make_staff, stores):
    users, _kwargs = seed(make_staff, stores)
    client = Client()
    client.force_login(users["admin"])
    session = client.cookies["sessionid"].value
    english, inaccessible, wrong_status = {}, [], []
    for language in ("ru", "en"):
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(10_000)
        context.add_cookies(
            [
                {"name": "language", "value": language, "url": live_server.url},
                {"name": "sessionid", "value": session, "url": live_server.url},
            ]
        )
        page = context.new_page()
        try:
            for url in admin_urls():
                response = page.goto(url)
                if response.status != 200:
                    wrong_status.append(f"{url}: {response.status}")
                    continue
                who = f"{url} ({language})"
                if language == "ru":
                    found = english_on(page.evaluate(VISIBLE_TEXT))
                    if found:
                        english[who] = found
                violations = accessibility_violations(page)
                if violations:
                    inaccessible.append(f"{who}:\n{describe_violations(violations)}")
        finally:
            context.close()
    english_lines = [f"{who}: {', '.join(words)}" for who, words in english.items()]
    assert not (wrong_status or inaccessible or english_lines), "\n".join(
        ["Wrong status:", *wrong_status, "axe-core:", *inaccessible, "English:", *english_lines]
    )
