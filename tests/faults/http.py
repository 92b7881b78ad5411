"""A plain HTTP client for the fault tests' real servers (urllib: no session, no retries)."""

import json
import urllib.error
import urllib.request


def call(base, method, path, body=None, *, key=None, timeout=30):
    """(status, parsed JSON body or text) of one request to a real server."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = key
    request = urllib.request.Request(  # noqa: S310  (http:// to the test's own server)
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text
