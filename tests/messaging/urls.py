"""The project's URLs with this app's pages, until loyalty/project/urls.py includes them."""

from django.urls import include, path

from loyalty.project.urls import handler404, handler500  # noqa: F401
from loyalty.project.urls import urlpatterns as project_patterns

urlpatterns = [*project_patterns]
if not any(getattr(p, "namespace", None) == "messaging" for p in project_patterns):
    urlpatterns.append(path("operations/", include("messaging.urls")))
