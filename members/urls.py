from django.urls import path

from members import data_views, views

app_name = "members"

urlpatterns = [
    path("", views.member_list, name="member-list"),
    path("enrol/", views.member_enrol, name="member-enrol"),
    path("enrol/phone-check/", views.phone_check, name="phone-check"),
    path("data/", data_views.import_start, name="import"),
    path("data/imports/<int:pk>/", data_views.import_detail, name="import-detail"),
    path("data/imports/<int:pk>/errors.csv", data_views.import_errors, name="import-errors"),
    path("data/members.csv", data_views.export_members, name="export-members"),
    path("data/purchases.csv", data_views.export_purchases, name="export-purchases"),
    path("<str:card_number>/", views.member_detail, name="member-detail"),
    path("<str:card_number>/edit/", views.member_edit, name="member-edit"),
    path("<str:card_number>/purchases/<int:pk>/", views.member_purchase, name="member-purchase"),
    path("<str:card_number>/adjust/", views.member_adjust, name="member-adjust"),
    path("<str:card_number>/block/", views.member_block, name="member-block"),
    path("<str:card_number>/merge/", views.member_merge, name="member-merge"),
    path(
        "<str:card_number>/personal-data.json",
        views.member_personal_data,
        name="member-personal-data",
    ),
    path("<str:card_number>/erase/", views.member_erase, name="member-erase"),
]
