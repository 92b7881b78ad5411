from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<str:name>/run/", views.job_run_now, name="job-run"),
    path("members/<str:card_number>/", views.member_messages, name="member-messages"),
    path("partners/settlement/", views.partner_settlement, name="partner-settlement"),
]
