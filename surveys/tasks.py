from celery import shared_task

from loyalty.web.taskqueue import RETRY_WHEN_BUSY, send_waiting
from surveys.models import SurveySend
from surveys.services import run_survey_send


@shared_task(acks_late=True, name="surveys.tasks.send_survey", **RETRY_WHEN_BUSY)
def send_survey(send_id):
    """Run one ad-hoc survey send (safe to run twice)."""
    send = SurveySend.objects.filter(pk=send_id).first()
    if send is not None:
        run_survey_send(send)


@shared_task(name="surveys.tasks.send_waiting_survey_sends")
def send_waiting_survey_sends():
    """The sweep: survey sends saved while the broker was down are sent to a worker (every
    minute)."""
    return send_waiting(SurveySend.objects.filter(status=SurveySend.Status.PENDING), send_survey)
