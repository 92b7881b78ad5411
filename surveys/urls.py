from django.urls import path

from surveys import api, complaint_views, views

app_name = "surveys"

urlpatterns = [
    path("", views.nps_dashboard, name="nps-dashboard"),
    path("definitions/", views.survey_list, name="survey-list"),
    path("definitions/<int:pk>/", views.survey_edit, name="survey-edit"),
    path("send/", views.survey_send, name="survey-send"),
    path("send/<int:pk>/", views.survey_send_detail, name="survey-send-detail"),
]

public_urlpatterns = [
    path("<str:token>/", views.answer, name="survey-answer"),
    path("<str:token>/follow-up/", views.follow_up, name="survey-follow-up"),
]

complaint_urlpatterns = [
    path("", complaint_views.complaint_list, name="complaint-list"),
    path("new/", complaint_views.complaint_create, name="complaint-create"),
    path("<int:pk>/", complaint_views.complaint_detail, name="complaint-detail"),
    path("<int:pk>/take/", complaint_views.complaint_take, name="complaint-take"),
    path("<int:pk>/status/", complaint_views.complaint_status, name="complaint-status"),
    path("<int:pk>/note/", complaint_views.complaint_note, name="complaint-note"),
    path("<int:pk>/resolve/", complaint_views.complaint_resolve, name="complaint-resolve"),
]

# The survey API, under /api/v1/ beside the till's (the root URLconf puts it there).
api_urlpatterns = [
    path("surveys/responses", api.SurveyResponsesView.as_view(), name="api-survey-responses"),
    path("complaints", api.ComplaintsView.as_view(), name="api-complaints"),
]
