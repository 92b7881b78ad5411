"""The interactive API page (Swagger UI) inside a page of the product's own: the reader's
language on <html>, a translated title and heading, colours that meet WCAG AA contrast."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularSwaggerSplitView


class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "api/api_docs.html"
    title = _("Loyalty API")
