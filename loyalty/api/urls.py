from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from loyalty.api import views
from loyalty.api.docs import ApiDocsView

urlpatterns = [
    path("members", views.MembersView.as_view(), name="api-members"),
    path("members/<str:card_number>", views.MemberDetailView.as_view(), name="api-member"),
    path("members/<str:card_number>/ledger", views.MemberLedgerView.as_view(), name="api-ledger"),
    path(
        "members/<str:card_number>/personal-data",
        views.MemberPersonalDataView.as_view(),
        name="api-personal-data",
    ),
    path(
        "members/<str:card_number>/erasure",
        views.MemberErasureView.as_view(),
        name="api-erasure",
    ),
    path(
        "members/<str:card_number>/membership",
        views.MemberMembershipView.as_view(),
        name="api-membership",
    ),
    path("membership-plans", views.MembershipPlansView.as_view(), name="api-membership-plans"),
    path("purchases/quote", views.QuoteView.as_view(), name="api-quote"),
    path("purchases", views.PurchasesView.as_view(), name="api-purchases"),
    path("purchases/<str:external_id>/refunds", views.RefundsView.as_view(), name="api-refunds"),
    path(
        "coupons/<str:code>/validate",
        views.CouponValidateView.as_view(),
        name="api-coupon-validate",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
]
