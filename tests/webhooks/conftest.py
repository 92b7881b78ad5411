"""A real HTTP server receiving webhook deliveries, as an integrator's would: it checks the
signature with the subscription's secret and drops a delivery id it has processed already."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faults.conftest import celery_on, private_redis  # noqa: F401  (fixtures)
from tests.jobs.conftest import buy, enrol, run  # noqa: F401  (fixtures)
from tests.surveys.conftest import member, surveys  # noqa: F401  (fixtures)
from webhooks.models import Event, Subscription
from webhooks.services import verify


class Receiver:
    """``.url``; ``.answers`` (status codes to answer in turn, then 200); ``.requests`` (every
    request: headers, body, whether its signature held); ``.processed`` (delivery ids handled,
    each once); ``.hold`` (a threading.Event: set ``.holding`` to make requests wait for it)."""

    def __init__(self):
        self.answers = []
        self.requests = []
        self.processed = []
        self.secret = None
        self.holding = False
        self.hold = threading.Event()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = receiver.secret is not None and verify(
                    receiver.secret, self.headers.get("X-Loyalty-Signature", ""), body
                )
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": json.loads(body), "signed": signed}
                )
                receiver.arrived.set()
                if receiver.holding:
                    receiver.hold.wait(60)
                status = receiver.answers.pop(0) if receiver.answers else 200
                delivery = self.headers.get("X-Loyalty-Delivery")
                if 200 <= status < 300 and delivery not in receiver.processed:
                    receiver.processed.append(delivery)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def subscribe(db, receiver, admin_user_):
    """Subscribe the receiver to events (all by default): ``subscribe(Event.PURCHASE_RECORDED)``."""

    def make(*events, url=None):
        subscription = Subscription.objects.create(
            url=url or receiver.url, events=list(events or Event.values), created_by=admin_user_
        )
        receiver.secret = subscription.secret
        return subscription

    return make
