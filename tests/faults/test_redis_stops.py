"""Redis stops while purchases arrive (issue 20, item 1).

A real gunicorn and a real Celery worker use a redis-server of the test's own (cache and broker).
It is killed (SIGKILL, no persistence: its queues are gone) while purchases of referred friends
arrive: each purchase is recorded with its points and its messages are written to the outbox;
the referrer's credit, whose Celery message could not be sent, waits for its sweep. Once Redis is
started again the beat's rounds (sent here by the test: the sweep, then delivery) credit the
referrers and deliver every message exactly once; running the rounds again sends nothing more.
"""

from datetime import timedelta

from django.utils import timezone

from loyalty.engine.ledger import ledger_drift
from loyalty.models import LedgerEntry, ProgramSettings, Purchase, ReferralReward
from loyalty.tasks import credit_referrers_task
from members.models import Member
from messaging.models import Message, Outbox
from messaging.tasks import deliver_messages
from tests.faults.http import call

QUEUE = "celery"  # the default queue of the server (project settings), on the private Redis


def sent_mail(folder):
    """The e-mails the worker's file backend wrote (one Message-ID header each)."""
    return sum(path.read_text().count("\nMessage-ID: ") for path in folder.glob("*.log"))


def test_purchases_while_redis_is_down_are_recorded_and_their_messages_go_once_it_is_back(
    private_redis, celery_on, celery_worker, gunicorn, api, tmp_path
):
    ProgramSettings.objects.filter(pk=1).update(referral_points=100)
    key = api._credentials["HTTP_AUTHORIZATION"]
    env = {"REDIS_URL": private_redis.url, "VAR_DIR": str(tmp_path)}
    celery_on(private_redis.url)
    worker = celery_worker(queues=[QUEUE], env=env)
    server = gunicorn(**env)

    status, referrer = call(
        server.base, "POST", "/api/v1/members", {"phone": "+79120000100"}, key=key
    )
    assert status == 201, referrer
    code = Member.objects.get(card_number=referrer["card_number"]).referral_code
    friends = []
    for number in range(3):
        status, friend = call(
            server.base,
            "POST",
            "/api/v1/members",
            {
                "phone": f"+7912000020{number}",
                "email": f"friend{number}@example.com",
                "referral_code": code,
            },
            key=key,
        )
        assert status == 201, friend
        friends.append(friend["card_number"])
    Member.objects.filter(card_number=referrer["card_number"]).update(email="ref@example.com")

    def buy(card, receipt):
        return call(
            server.base,
            "POST",
            "/api/v1/purchases",
            {"external_id": receipt, "card_number": card, "amount": "1000.00"},
            key=key,
        )

    # With Redis up the referrer's credit goes to the worker at once.
    status, body = buy(friends[0], "R-1")
    assert (status, body["earned_points"]) == (201, 30)
    worker.wait_for(
        lambda: ReferralReward.objects.filter(referrer_credited_at__isnull=False).count() == 1,
        "the first referrer credit",
    )

    private_redis.stop()
    answers = [buy(friends[1], "R-2"), buy(friends[2], "R-3"), buy(friends[2], "R-3")]

    assert [status for status, _body in answers] == [201, 201, 201]
    assert answers[2][1] == answers[1][1]  # the retry is a replay, Redis or not
    assert Purchase.objects.count() == 3
    balances = dict(Member.objects.values_list("card_number", "points_balance"))
    assert [balances[card] for card in friends] == [130, 130, 130]
    assert balances[referrer["card_number"]] == 100  # two credits wait for the sweep
    assert Outbox.objects.filter(status="pending").count() == 4
    assert Message.objects.count() == 0

    private_redis.start()  # empty: whatever it held is gone
    # The sweep takes rewards older than a minute (their own message had its chance).
    ReferralReward.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    for _round in range(2):  # the beat's rounds, twice: the second finds nothing to do
        credit_referrers_task.apply_async(queue=QUEUE)
        deliver_messages.apply_async(queue=QUEUE)
    worker.wait_for(
        lambda: worker.log(last=10**6).count("Task messaging.tasks.deliver_messages[") >= 4,
        "both delivery rounds to finish",
    )
    worker.wait_for(
        lambda: not Outbox.objects.filter(status="pending").exists(), "every message to go"
    )

    assert Member.objects.get(card_number=referrer["card_number"]).points_balance == 300
    assert Outbox.objects.filter(purpose="referral_reward", status="done").count() == 6
    assert Outbox.objects.count() == 6
    assert Message.objects.filter(status="sent").count() == 6
    assert Message.objects.values("outbox").distinct().count() == 6  # none twice
    assert sent_mail(tmp_path / "mail") == 6
    assert LedgerEntry.objects.filter(kind="bonus", points=100).count() == 6
    assert list(ledger_drift()) == []
    assert "Internal Server Error" not in server.log()
