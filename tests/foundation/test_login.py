"""Signing in and out, the lockout after repeated failures, and the language switch."""

import pytest
from django.conf import settings
from django.test import Client

from loyalty.management.commands.seed_demo import DEMO_PASSWORD

WRONG = "not-the-password"


def sign_in(client, username, password, ip="127.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in_username(client):
    response = client.get("/")
    if response.status_code != 200:
        return None
    return response.context["user"].username


def test_signing_in_with_the_right_password_opens_the_home_page(client, support):
    response = sign_in(client, "support", DEMO_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert signed_in_username(client) == "support"


def test_signing_in_with_a_wrong_password_shows_the_form_again(client, support):
    response = sign_in(client, "support", WRONG)

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert signed_in_username(client) is None


def test_signing_in_returns_to_the_page_asked_for(client, support):
    response = client.post(
        "/login/?next=/healthz", {"username": "support", "password": DEMO_PASSWORD}
    )

    assert response["Location"] == "/healthz"


def test_signing_out_ends_the_session(client, support):
    sign_in(client, "support", DEMO_PASSWORD)

    response = client.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert signed_in_username(client) is None


def test_sign_out_is_not_a_link(client, support):
    """A GET must not sign anyone out (a prefetched or embedded link would)."""
    sign_in(client, "support", DEMO_PASSWORD)

    response = client.get("/logout/")

    assert response.status_code == 405
    assert signed_in_username(client) == "support"


def fail_until_locked(client, username, ip="127.0.0.1"):
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, username, WRONG, ip=ip)


def test_after_five_failures_even_the_right_password_is_refused(client, support):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail_until_locked(client, "support")

    response = sign_in(client, "support", DEMO_PASSWORD)

    assert response.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    assert signed_in_username(client) is None


def test_four_failures_do_not_lock_the_account(client, support):
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "support", WRONG)

    response = sign_in(client, "support", DEMO_PASSWORD)

    assert response.status_code == 302
    assert signed_in_username(client) == "support"


def test_the_lockout_holds_one_username_from_one_address(support, marketer):
    fail_until_locked(Client(), "support", ip="10.0.0.1")

    other_user = Client()
    other_address = Client()

    assert sign_in(other_user, "marketer", DEMO_PASSWORD, ip="10.0.0.1").status_code == 302
    assert sign_in(other_address, "support", DEMO_PASSWORD, ip="10.0.0.2").status_code == 302
    assert sign_in(Client(), "support", DEMO_PASSWORD, ip="10.0.0.1").status_code == 429


@pytest.mark.parametrize(("language", "other_button"), [("en", "Русский"), ("ru", "English")])
def test_the_language_switch_changes_the_page_language(client, language, other_button):
    response = client.post("/i18n/setlang/", {"language": language, "next": "/login/"}, follow=True)

    assert response.redirect_chain == [("/login/", 302)]
    assert response["Content-Language"] == language
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    # The switch offers the other language, named in that language.
    assert f'value="{"ru" if language == "en" else "en"}"' in html
    assert f">{other_button}</button>" in html
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == language


def test_the_chosen_language_stays_after_signing_in(client, support):
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    sign_in(client, "support", DEMO_PASSWORD)

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="ru")

    assert response["Content-Language"] == "en"
