"""The OpenAPI schema at /api/v1/schema/ tells the truth, and the API keeps to it.

schemathesis runs every phase (examples, coverage, fuzzing, stateful) with every check against a
live server; schemathesis.toml and tests/api_schema_hooks.py say what it is told and why.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis.engine import Status, events, from_schema

import tests.api_schema_hooks  # noqa: F401  (registers the hooks for the rules no schema spells)
from loyalty.api.schema import ANY_TEXT
from loyalty.engine.adjustments import adjust_points
from loyalty.engine.apikeys import create_api_key
from loyalty.models import Purchase
from members.models import Member
from surveys.defaults import install_default_surveys
from surveys.models import ComplaintCategory, Survey

CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
# Bounded so that the run stays about a minute on CI's two cores (docs/api.md has the figures).
MAX_EXAMPLES = 15


def _run_schemathesis(base_url, raw_key):
    config = schemathesis.Config.from_path(CONFIG)
    config.projects.default.update(headers={"Authorization": f"Bearer {raw_key}"}, workers=1)
    config.projects.default.generation.update(max_examples=MAX_EXAMPLES)
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/schema/", config=config)
    operations = sum(1 for result in schema.get_all_operations() if result.ok())
    cases, failures, errors, finished = 0, [], [], None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{event.recorder.label} [{check.name}] {failure.title}: "
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(f"{getattr(event, 'label', '')}: {event!r}")
        elif isinstance(event, events.EngineFinished):
            finished = event
            failures.extend(f"after run: {failure.title}" for failure in event.failures)
    return operations, cases, failures, errors, finished


def test_the_api_keeps_to_its_openapi_schema_under_schemathesis(live_server, store):
    # A live-server test may follow one that flushed the migrations' data: the hooks' complaint
    # category must exist.
    install_default_surveys(Survey, ComplaintCategory)
    _key, raw = create_api_key(store=store, name="schemathesis")
    # 127.0.0.1, not localhost: each new connection would try ::1 first.
    base_url = live_server.url.replace("localhost", "127.0.0.1")
    operations, cases, failures, errors, finished = _run_schemathesis(base_url, raw)
    assert failures == []
    assert errors == []
    assert finished is not None and finished.stop_reason == "completed"
    assert operations == 16
    assert cases > 10 * MAX_EXAMPLES  # every operation was tried, not skipped


def _schema(client):
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_member_look_up_is_documented_as_count_and_results(api):
    schema = _schema(api)
    answer = schema["paths"]["/api/v1/members"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    listing = schema["components"]["schemas"][ref]
    assert listing["type"] == "object"
    assert set(listing["required"]) == {"count", "results"}
    assert listing["properties"]["results"]["type"] == "array"
    body = api.get("/api/v1/members?phone=%2B79120000000").json()
    assert body == {"count": 0, "results": []}


def test_every_operation_documents_the_error_envelope_for_each_status(api):
    schema = _schema(api)
    statuses = {"400", "401", "403", "404", "405", "409", "413", "414", "415", "422", "429", "503"}
    for path, methods in schema["paths"].items():
        if not path.startswith("/api/v1/") or path.endswith(("/schema/", "/docs/")):
            continue
        for method, operation in methods.items():
            responses = operation["responses"]
            assert statuses <= set(responses), (method, path)
            for status in statuses:
                content = responses[status]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/ErrorEnvelope"}
            assert "Retry-After" in responses["503"]["headers"]
            assert "Retry-After" in responses["429"]["headers"]


def test_required_strings_are_documented_non_blank_and_blank_is_refused(api):
    schemas = _schema(api)["components"]["schemas"]
    required_text = {
        "Enrol": "phone",
        "Purchase": "external_id",
        "Refund": "refund_id",
        "Line": "sku",
        "SurveyAnswer": "token",
        "ComplaintIn": "subject",
    }
    for component, field in required_text.items():
        assert schemas[component]["properties"][field]["minLength"] == 1, component
        assert "pattern" in schemas[component]["properties"][field], component
        assert schemas[component]["additionalProperties"] is False, component
    response = api.post("/api/v1/purchases", {"external_id": " ", "amount": "10.00"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["external_id"]


@pytest.mark.parametrize(
    "amount", ["1e3", " 100 ", "１００", "100,00", "+100", "-0.01", "0100", "1000.001", 1000, 10.5]
)
def test_an_amount_written_another_way_is_refused_naming_the_field(api, amount):
    response = api.post(
        "/api/v1/purchases", {"external_id": "R-1", "amount": amount}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == ["amount"]
    assert Purchase.objects.count() == 0


@pytest.mark.parametrize("amount", ["1000", "1000.5", "1000.50", "0.01", "9999999999.99"])
def test_an_amount_of_digits_and_at_most_two_places_is_taken(api, amount):
    response = api.post(
        "/api/v1/purchases", {"external_id": "R-1", "amount": amount}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Purchase.objects.get().amount == Decimal(amount)


LINES = [
    {"sku": "MILK", "quantity": "0.333", "unit_price": "100.00"},  # 33.30
    {"sku": "BREAD", "quantity": "3", "unit_price": "33.33"},  # 99.99
]


def test_lines_that_add_up_to_the_amount_to_the_kopeck_are_recorded(api):
    body = {"external_id": "R-1", "amount": "133.29", "lines": LINES}
    response = api.post("/api/v1/purchases", body, format="json")
    assert response.status_code == 201, response.json()
    assert Purchase.objects.get().lines.count() == 2


@pytest.mark.parametrize("path", ["/api/v1/purchases", "/api/v1/purchases/quote"])
def test_lines_one_kopeck_off_the_amount_are_refused_naming_lines(api, path):
    body = {"external_id": "R-1", "amount": "133.30", "lines": LINES}
    if path.endswith("quote"):
        del body["external_id"]
    response = api.post(path, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "lines": ["The lines add up to 133.29, not to the amount 133.30."]
    }
    assert Purchase.objects.count() == 0


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/api/v1/purchases/R-9/refunds", {"refund_id": 7, "amount": "1.00"}, "refund_id"),
        (
            "/api/v1/members",
            {"phone": "+79120000001", "marketing_consent": "true"},
            "marketing_consent",
        ),
        (
            "/api/v1/purchases/quote",
            {"amount": "1.00", "card_number": "2000000000008", "redeem_points": "5"},
            "redeem_points",
        ),
    ],
)
def test_a_value_of_another_json_type_is_refused(api, path, body, field):
    response = api.post(path, body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_a_nul_in_the_look_up_e_mail_is_refused_not_a_server_error(api):
    response = api.get("/api/v1/members?phone=%2B79122954660&email=a%00b")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["email"]


@pytest.mark.parametrize("page_size", ["0", "201", "ten", "", "1.5"])
def test_a_ledger_page_size_out_of_range_is_refused(api, pos, page_size):
    card = pos.enrol()["card_number"]
    response = api.get(f"/api/v1/members/{card}/ledger?page_size={page_size}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["page_size"]
    assert api.get(f"/api/v1/members/{card}/ledger?page_size=200").status_code == 200


def _assert_documented(api, method, path_template, response):
    """The answer is one the schema documents for the operation (status, headers, body), as
    schemathesis's response checks judge it; raises with what differs otherwise."""
    schema = schemathesis.openapi.from_dict(_schema(api))
    operation = schema[path_template][method]
    request = requests.Request(method, f"http://testserver{response.request['PATH_INFO']}")
    answer = schemathesis.Response(
        status_code=response.status_code,
        headers={name: [value] for name, value in response.headers.items()},
        content=response.content,
        request=request.prepare(),
        elapsed=0.0,
        verify=True,
    )
    operation.validate_response(answer)


def test_a_ledger_entry_without_a_purchase_answers_as_documented(api, pos):
    card = pos.enrol()["card_number"]
    adjust_points(
        member_id=Member.objects.get(card_number=card).pk, points=200, reason="Late", staff=None
    )
    response = api.get(f"/api/v1/members/{card}/ledger")
    assert response.status_code == 200
    assert [(e["kind"], e["purchase"]) for e in response.json()["results"]] == [("adjust", None)]
    _assert_documented(api, "GET", "/api/v1/members/{card_number}/ledger", response)


@pytest.mark.parametrize(
    "path_template,parameter",
    [
        ("/api/v1/members/{card_number}/ledger", "cursor"),
        ("/api/v1/purchases/{external_id}/refunds", "external_id"),
        ("/api/v1/coupons/{code}/validate", "code"),
    ],
)
def test_a_parameter_the_api_refuses_a_nul_in_is_documented_without_nul(
    api, path_template, parameter
):
    # HostileUrlMiddleware refuses a NUL anywhere in the URL with 400: the schema must not let a
    # schema-valid request hold one (schemathesis drew ?cursor=...%00 and got 400).
    (operation,) = _schema(api)["paths"][path_template].values()
    (documented,) = [p for p in operation["parameters"] if p["name"] == parameter]
    assert documented["schema"]["pattern"] == ANY_TEXT


@pytest.mark.parametrize(
    "component,field,words",
    [
        ("Enrol", "phone", "phonenumbers"),
        ("Enrol", "email", "EmailValidator"),
        ("Enrol", "birth_date", "1900-01-01"),
        ("Enrol", "referral_code", "no member has"),
        ("Purchase", "occurred_at", "2000"),
    ],
)
def test_a_rule_no_pattern_spells_is_said_in_the_field_description(api, component, field, words):
    # Outsiders fuzz without tests/api_schema_hooks.py: a schema-valid value the API refuses must
    # be one the schema's own words rule out (docs/api.md).
    description = _schema(api)["components"]["schemas"][component]["properties"][field]
    assert words in description.get("description", ""), description
    assert "400" in description["description"]


@pytest.mark.parametrize(
    "path,code",
    [
        ("/api/v1/purchases", "insufficient_points"),
        ("/api/v1/purchases/quote", "coupon_not_applicable"),
        ("/api/v1/purchases/{external_id}/refunds", "refund_exceeds_purchase"),
    ],
)
def test_a_business_rule_a_valid_request_can_break_is_in_the_operation_description(api, path, code):
    (operation,) = _schema(api)["paths"][path].values()
    assert "422" in operation["description"]
    assert f"`{code}`" in operation["description"]


def test_a_survey_answers_documented_default_reason_is_one_it_takes(api):
    # The schema gives reason the default "": sending it must be as good as leaving it out
    # (an unknown token is then 404, not 400 naming reason).
    reason = _schema(api)["components"]["schemas"]["SurveyAnswer"]["properties"]["reason"]
    assert reason["default"] == ""
    for body in ({"token": "no-such-token"}, {"token": "no-such-token", "reason": ""}):
        response = api.post("/api/v1/surveys/responses", body, format="json")
        assert response.status_code == 404, response.json()


@pytest.mark.parametrize("url", ["/api/v1/schema/", "/api/v1/docs/"])
def test_the_schema_and_its_page_open_even_with_a_wrong_key(client, db, url):
    response = client.get(url, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 200
