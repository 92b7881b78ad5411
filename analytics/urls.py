from django.urls import path

from analytics import views, whatif_views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export/<slug:kind>.csv", views.export, name="export"),
    path("liability/", views.liability_page, name="liability"),
    path("effect/", views.effect_page, name="effect"),
    path("effect.csv", views.effect_export, name="effect-export"),
    path("roi/", views.roi_page, name="roi"),
    path("roi.csv", views.roi_export, name="roi-export"),
    path("what-if/", whatif_views.whatif_page, name="whatif"),
    path("what-if.csv", whatif_views.whatif_export, name="whatif-export"),
    path("liability/<slug:kind>.csv", views.liability_export, name="liability-export"),
]
