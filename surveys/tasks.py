from celery import shared_task

from surveys.models import SurveySend
from surveys.services import run_survey_send


@shared_task(acks_late=True)
def send_survey(send_id):
    """Run one ad-hoc survey send (safe to run twice)."""
    send = SurveySend.objects.filter(pk=send_id).first()
    if send is not None:
        run_survey_send(send)
