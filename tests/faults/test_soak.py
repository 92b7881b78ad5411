"""The soak driver of ``make soak`` (bench/soak.py), bounded for CI: a mixed API load from real
threads against a real gunicorn, then the ledger checked (issue 20 item 2)."""

from django.core.management import call_command

from bench.soak import drive
from loyalty.engine.ledger import ledger_drift
from loyalty.models import Purchase


def test_a_mixed_load_answers_no_5xx_and_leaves_the_ledger_exact(gunicorn, api):
    key = api._credentials["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    cards = [
        api.post("/api/v1/members", {"phone": f"+7912000{n:04d}"}, format="json").json()[
            "card_number"
        ]
        for n in range(40)
    ]
    server = gunicorn(workers=2, API_THROTTLE_RATE="1000000000/min")

    outcome = drive(server.base, key, cards, duration=12, concurrency=4, seed=20)

    assert outcome.server_errors == 0, server.log()[-3000:]
    assert outcome.unexpected == []
    assert outcome.replay_mismatches == 0
    assert outcome.requests > 0 and outcome.acknowledged
    recorded = dict(
        Purchase.objects.filter(external_id__in=outcome.acknowledged).values_list(
            "external_id", "earned_points"
        )
    )
    assert recorded == outcome.acknowledged  # each acknowledged receipt once, its points exact
    assert list(ledger_drift()) == []
    call_command("check_ledger")
