from django.urls import path

from members import data_views, self_views, views

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
    path(
        "<str:card_number>/membership/",
        views.member_membership_join,
        name="member-membership-join",
    ),
    path(
        "<str:card_number>/membership/cancel/",
        views.member_membership_cancel,
        name="member-membership-cancel",
    ),
    path("<str:card_number>/merge/", views.member_merge, name="member-merge"),
    path(
        "<str:card_number>/personal-data.json",
        views.member_personal_data,
        name="member-personal-data",
    ),
    path("<str:card_number>/erase/", views.member_erase, name="member-erase"),
    path("<str:card_number>/send-link/", self_views.send_link, name="member-send-link"),
]

# The member's own page, under /me/ (namespace "me"); its session cookie is scoped to this path.
me_urlpatterns = [
    path("", self_views.sign_in, name="sign-in"),
    path("sent/", self_views.link_sent, name="link-sent"),
    path("in/<str:token>/", self_views.sign_in_link, name="sign-in-link"),
    path("out/", self_views.sign_out, name="sign-out"),
    path("account/", self_views.account, name="account"),
    path("history/", self_views.history, name="history"),
    path("details/", self_views.details, name="details"),
    path("personal-data.json", self_views.personal_data, name="personal-data"),
    path("erase/", self_views.erase, name="erase"),
]
