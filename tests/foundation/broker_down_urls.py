"""The project's URLs and two views that send a task without catching a broker error: what the
safety net (loyalty.web.middleware.ServiceDownMiddleware) is there for."""

from django.http import HttpResponse
from django.urls import path

from loyalty.project.urls import handler404, handler500  # noqa: F401
from loyalty.project.urls import urlpatterns as project_patterns
from loyalty.tasks import run_job


def sends_a_task(request):
    run_job.delay("reevaluate_tiers")
    return HttpResponse("sent")


urlpatterns = [
    path("api/v1/test-sends-a-task", sends_a_task),
    path("test-sends-a-task/", sends_a_task),
    *project_patterns,
]
