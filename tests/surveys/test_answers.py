"""The public answer page and the API: a link works once, and a detractor opens a case."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from loyalty.models import AuditLog
from surveys.models import Complaint, SurveyInvitation, SurveyResponse


def test_a_promoter_answers_once_and_is_thanked(client, invite, member):
    token = invite()
    page = client.get(f"/s/{token}/")
    assert page.status_code == 200
    assert "Насколько вероятно" in page.content.decode()  # the member's language: Russian
    answered = client.post(f"/s/{token}/", {"score": "10", "comment": "Отлично"})
    assert answered.status_code == 200
    assert "Спасибо" in answered.content.decode()
    response = SurveyResponse.objects.get()
    assert (response.score, response.group, response.comment) == (10, "promoter", "Отлично")
    assert response.member == member
    assert Complaint.objects.count() == 0


def test_a_reused_link_shows_a_friendly_page_and_records_nothing_more(client, invite):
    token = invite()
    client.post(f"/s/{token}/", {"score": "8"})
    again = client.post(f"/s/{token}/", {"score": "0"})
    assert again.status_code == 200
    assert "уже" in again.content.decode()  # "already answered", in Russian
    assert SurveyResponse.objects.count() == 1
    assert SurveyResponse.objects.get().score == 8


def test_a_forged_link_is_404_with_a_friendly_page(client, invite):
    invite()
    response = client.get("/s/forged-token-that-was-never-issued/")
    assert response.status_code == 404
    assert "<form" not in response.content.decode()


def test_an_expired_link_is_refused(client, invite):
    token = invite(now=timezone.now() - timedelta(days=15))  # links live 14 days
    response = client.post(f"/s/{token}/", {"score": "9"})
    assert response.status_code == 410
    assert SurveyResponse.objects.count() == 0


def test_tokens_are_stored_only_as_hashes(invite):
    token = invite()
    stored = SurveyInvitation.objects.get()
    assert token not in stored.token_hash
    assert len(token) >= 43  # 32 random bytes, URL-safe base64


def test_a_detractor_opens_a_case_due_by_the_sla(client, invite, member):
    token = invite()
    before = timezone.now()
    client.post(f"/s/{token}/", {"score": "3", "comment": "Долго ждал на кассе"})
    case = Complaint.objects.get()
    assert case.member == member
    assert case.source == "survey"
    assert case.category.code == "detractor"
    assert case.status == "new"
    assert "Долго ждал" in case.subject
    assert timedelta(hours=47, minutes=59) < case.due_at - before < timedelta(hours=48, minutes=1)
    assert AuditLog.objects.filter(action="complaint.open", member=member).count() == 1


def test_a_score_is_required(client, invite):
    token = invite()
    response = client.post(f"/s/{token}/", {"comment": "no score"})
    assert response.status_code == 200
    assert SurveyResponse.objects.count() == 0
    assert SurveyInvitation.objects.get().answered_at is None


def test_api_records_an_answer_collected_elsewhere(api, invite):
    token = invite()
    response = api.post(
        "/api/v1/surveys/responses", {"token": token, "score": 6, "comment": "meh"}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {
        "survey": "nps",
        "score": 6,
        "group": "detractor",
        "complaint_opened": True,
    }
    again = api.post("/api/v1/surveys/responses", {"token": token, "score": 9}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "survey_link_used"
    bad = api.post("/api/v1/surveys/responses", {"token": token, "score": 11}, format="json")
    assert bad.status_code == 400
    assert APIClient().post("/api/v1/surveys/responses", {}, format="json").status_code == 401


def test_churn_survey_records_a_reason(client, invite):
    token = invite("churn")
    client.post(f"/s/{token}/", {"reason": "competitor", "comment": "Ближе к дому"})
    response = SurveyResponse.objects.get()
    assert (response.reason, response.score) == ("competitor", None)
