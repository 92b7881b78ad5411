"""CSV import through the page (a Celery task) and export that imports again."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from loyalty.models import AuditLog, Purchase
from loyalty.project.celery import app as celery_app
from members.models import ImportJob, Member
from members.tasks import send_waiting_imports

MEMBERS_CSV = (
    "\ufeffphone,first_name,last_name,email,birth_date,marketing_consent,store,external_ref\n"
    "+79001112233,Пётр,Иванов,petr@example.com,1990-05-01,true,MSK-01,C-1\n"
    "8 (900) 111-22-44,Ира,,,2000-02-29,false,SPB-01,C-2\n"
)


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def upload(client, kind, text, name="file.csv", **extra):
    return client.post(
        reverse("members:import"),
        {"kind": kind, "file": SimpleUploadedFile(name, text.encode(), "text/csv"), **extra},
    )


def test_members_import_runs_in_celery_and_reports_progress(
    client_as, admin_user_, stores, eager_celery, django_capture_on_commit_callbacks
):
    client = client_as("admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, "members", MEMBERS_CSV)
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("members:import-detail", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.imported) == ("done", 2, 2, 2)
    petr = Member.objects.get(external_ref="C-1")
    assert str(petr.phone) == "+79001112233"
    assert petr.marketing_consent is True
    assert petr.enrolled_store.code == "MSK-01"
    assert str(Member.objects.get(external_ref="C-2").birth_date) == "2000-02-29"
    progress = client.get(reverse("members:import-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert "every 1s" not in progress.content.decode()  # finished: polling stops


def test_imported_member_has_an_enrolment_audit_row(
    client_as, admin_user_, stores, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "members", MEMBERS_CSV)
    petr = Member.objects.get(external_ref="C-1")
    entry = AuditLog.objects.get(member=petr)
    assert (entry.action, entry.actor, entry.object_id) == (
        "member.enrol",
        admin_user_,
        str(petr.pk),
    )
    assert entry.after == {
        "phone": "+79001112233",
        "card_number": petr.card_number,
        "marketing_consent": True,
    }
    assert petr.enrolment_channel == "import"
    assert AuditLog.objects.filter(action="member.enrol").count() == 2


def test_an_import_saved_while_the_broker_is_down_is_run_once_the_broker_is_back(
    transactional_db, client_as, admin_user_, stores, broker_down, celery_worker, settings
):
    client = client_as("admin")
    client.cookies["language"] = "en"

    response = upload(client, "members", MEMBERS_CSV)

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("members:import-detail", args=[job.pk])
    page = client.get(response["Location"]).content.decode()
    assert "The task queue is unreachable just now: the import is saved" in page
    assert (job.status, job.enqueued_at) == ("pending", None)
    come_back = broker_down
    come_back()
    worker = celery_worker(queues=[settings.CELERY_TASK_DEFAULT_QUEUE])
    assert send_waiting_imports() == 0  # a minute's grace: the request may still send it
    ImportJob.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert send_waiting_imports() == 1
    worker.wait_for(lambda: ImportJob.objects.get().status == "done", "the import to finish")
    assert Member.objects.filter(external_ref__in=["C-1", "C-2"]).count() == 2
    assert send_waiting_imports() == 0  # sent once


def test_an_import_sent_to_a_worker_is_not_sent_again_by_the_sweep(
    client_as, admin_user_, stores, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "members", MEMBERS_CSV)  # the broker took it
    ImportJob.objects.update(created_at=timezone.now() - timedelta(minutes=2))

    assert ImportJob.objects.get().enqueued_at is not None
    assert send_waiting_imports() == 0


def test_a_file_with_bad_rows_imports_nothing_and_reports_line_numbers(
    client_as, admin_user_, stores, eager_celery, django_capture_on_commit_callbacks
):
    text = (
        "phone,first_name,birth_date\n"
        "+79001112233,Good,1990-01-01\n"
        "not a phone,Bad,1990-01-01\n"
        "+79001112255,Bad date,1990-13-01\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "members", text)
    job = ImportJob.objects.get()
    assert job.status == "failed"
    assert job.error_count == 2
    assert Member.objects.count() == 0
    report = client_as("admin").get(reverse("members:import-errors", args=[job.pk]))
    lines = report.content.decode().splitlines()
    assert lines[0] == "line,column,error"
    assert lines[1].startswith("3,phone,")
    assert lines[2].startswith("4,birth_date,")


def test_unknown_columns_are_refused_by_name(
    client_as, admin_user_, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "members", "phone,shoe_size\n+79001112233,42\n")
    job = ImportJob.objects.get()
    assert job.status == "failed"
    assert "shoe_size" in job.message


def test_historical_purchases_earn_nothing_unless_asked(
    client_as, admin_user_, stores, make_member, eager_celery, django_capture_on_commit_callbacks
):
    member = make_member("MSK-01")
    text = (
        "external_id,store,occurred_at,amount,card_number\n"
        f"H-1,MSK-01,2026-01-10T12:00:00+03:00,1000.00,{member.card_number}\n"
        "H-2,SPB-01,2026-02-10,250.50,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "purchases", text)
    assert Purchase.objects.filter(is_historical=True).count() == 2
    member.refresh_from_db()
    assert member.points_balance == 0
    text2 = text.replace("H-1", "H-3").replace("H-2", "H-4")
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "purchases", text2, earn_points="on")
    member.refresh_from_db()
    assert member.points_balance == 30


def test_a_receipt_of_zero_is_history_that_earns_nothing(
    client_as, admin_user_, stores, make_member, eager_celery, django_capture_on_commit_callbacks
):
    """Imported history can hold free receipts (CDNOW's sample has eight); they are written, earn
    nothing even when the import earns points, and a negative amount is still refused."""
    member = make_member("MSK-01")
    text = (
        "external_id,store,occurred_at,amount,card_number\n"
        f"Z-1,MSK-01,2026-01-10,0.00,{member.card_number}\n"
        f"Z-2,MSK-01,2026-01-11,1000.00,{member.card_number}\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_as("admin"), "purchases", text, earn_points="on")
    free = Purchase.objects.get(external_id="Z-1")
    assert (free.amount, free.earned_points, free.is_historical) == (0, 0, True)
    member.refresh_from_db()
    assert member.points_balance == 30
    with django_capture_on_commit_callbacks(execute=True):
        upload(
            client_as("admin"), "purchases", text.replace(",0.00,", ",-1.00,").replace("Z-", "N-")
        )
    job = ImportJob.objects.latest("pk")
    assert job.status == "failed"
    assert job.error_report.splitlines()[1:] == [
        '2,amount,"Сумма от 0 и больше, с точкой и двумя знаками после неё."'
    ]
    assert not Purchase.objects.filter(external_id__startswith="N-").exists()


def test_an_export_imports_again(client_as, admin_user_, stores, make_member, tmp_path):
    from django.core.management import call_command

    make_member("MSK-01", "100.00", first_name="Анна", email="anna@example.com")
    make_member("SPB-01", first_name="Олег")
    exported = b"".join(
        client_as("admin").get(reverse("members:export-members")).streaming_content
    ).decode()
    path = tmp_path / "members.csv"
    # Renumber the phones so the same file describes new people, then import it.
    path.write_text(exported.replace("+7913", "+7914"), encoding="utf-8")
    call_command("import_members", str(path))
    assert Member.objects.filter(phone__startswith="+7914").count() == 2
    anna = Member.objects.get(phone__startswith="+7914", first_name="Анна")
    assert anna.email == "anna@example.com"
    assert anna.enrolled_store.code == "MSK-01"
