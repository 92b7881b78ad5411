"""The site has an icon: linked from every page, and at /favicon.ico for those who just ask."""

import re

from django.test import Client


def test_favicon_ico_is_served_at_the_site_root(db):
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an icon file
    assert int.from_bytes(body[4:6], "little") == 3  # 16, 32 and 48 pixels


def test_pages_link_an_icon_that_is_served(db):
    client = Client()
    for page in ("/login/", "/s/not-a-token/"):
        html = client.get(page).text
        links = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
        assert links == ["/static/favicon.svg"], page
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    assert b"".join(icon.streaming_content).startswith(b"<svg ")
