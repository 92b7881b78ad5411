from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="campaign-list"),
    path("new/", views.campaign_edit, name="campaign-create"),
    path("<int:pk>/", views.campaign_detail, name="campaign-detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="campaign-edit"),
    path("<int:pk>/send/", views.campaign_send, name="campaign-send"),
    path("<int:pk>/cancel/", views.campaign_cancel, name="campaign-cancel"),
    path("<int:pk>/results.csv", views.campaign_results_csv, name="campaign-results-csv"),
    path("coupons/", views.coupon_list, name="coupon-list"),
    path("coupons/export.csv", views.coupon_export, name="coupon-export"),
    path("segments/", views.segment_list, name="segment-list"),
    path("segments/new/", views.segment_edit, name="segment-create"),
    path("segments/<int:pk>/", views.segment_edit, name="segment-edit"),
]
