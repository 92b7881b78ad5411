"""The personal-data requests through the API: the whole file and erasure, audited with the
key."""

from loyalty.models import ApiKey, AuditLog
from tests.stories import member_with_a_story


def test_the_api_gives_the_members_whole_file_and_audits_the_key(api, stores, support):
    member = member_with_a_story(stores, support)

    response = api.get(f"/api/v1/members/{member.card_number}/personal-data")

    assert response.status_code == 200
    data = response.json()
    assert data["profile"]["email"] == "anna@example.com"
    assert [entry["points"] for entry in data["ledger"]] == [30, -7, 50]
    assert len(data["complaints"][0]["notes"]) == 1
    entry = AuditLog.objects.get(action="member.export")
    key = ApiKey.objects.get()
    assert (entry.actor, entry.member, entry.after) == (
        None,
        member,
        {"api_key": key.prefix, "store": "MSK-01"},
    )


def test_an_unknown_card_is_404_in_the_envelope(api, stores):
    response = api.get("/api/v1/members/2000000000008/personal-data")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"
    assert not AuditLog.objects.filter(action="member.export").exists()


def test_no_key_is_401(client, stores):
    response = client.get("/api/v1/members/2000000000008/personal-data")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def erasure(api, card, reason="Запрос клиента №17"):
    return api.post(f"/api/v1/members/{card}/erasure", {"reason": reason}, format="json")


def test_the_api_erases_and_erasing_again_answers_the_same(api, pos, stores, support):
    member = member_with_a_story(stores, support)

    first = erasure(api, member.card_number)
    second = erasure(api, member.card_number)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["status"] == "blocked"
    answer = pos.member(member.card_number)
    assert (answer["phone"], answer["first_name"], answer["email"]) == (None, "", "")
    assert answer["balance"] == {"available": 73, "pending": 0}
    entry = AuditLog.objects.get(action="member.erase")
    assert (entry.actor, entry.reason, entry.after["api_key"]) == (
        None,
        "Запрос клиента №17",
        ApiKey.objects.get().prefix,
    )


def test_an_erased_members_phone_may_enrol_again_through_the_api(api, pos, stores):
    first = pos.enrol(phone="+79125550101", first_name="Анна")
    erasure(api, first["card_number"])

    again = pos.enrol(phone="+79125550101")

    assert again["card_number"] != first["card_number"]
    assert again["phone"] == "+79125550101"


def test_a_purchase_on_an_erased_card_is_refused(api, pos, stores):
    card = pos.enrol()["card_number"]
    erasure(api, card)
    assert pos.buy(card, "100.00", expect=422)["error"]["code"] == "member_blocked"


def test_erasure_without_a_reason_is_400_naming_it(api, pos, stores):
    card = pos.enrol()["card_number"]
    response = api.post(f"/api/v1/members/{card}/erasure", {}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["reason"]


def test_erasure_of_an_unknown_card_is_404(api, stores):
    response = erasure(api, "2000000000008")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"
