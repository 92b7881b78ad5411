"""The API docs page is a page of the product: the reader's language declared, its own title
and header translated; Swagger UI's labels, English only, are marked as English."""

import re

import pytest
from django.test import Client

TITLE = {"ru": "API программы лояльности", "en": "Loyalty API"}
PRODUCT = {"ru": "Бэк-офис программы лояльности", "en": "Loyalty back-office"}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_api_docs_page_is_in_the_readers_language(db, language):
    client = Client()
    client.cookies["language"] = language

    html = client.get("/api/v1/docs/").content.decode()

    assert f'<html lang="{language}">' in html
    assert re.search(r"<title>(.*?)</title>", html).group(1) == (
        f"{TITLE[language]} · {PRODUCT[language]}"
    )
    assert re.search(r"<h1>(.*?)</h1>", html).group(1) == TITLE[language]
    assert '<div id="swagger-ui" lang="en"></div>' in html
