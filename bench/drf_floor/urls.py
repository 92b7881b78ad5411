from django.urls import path

from bench.drf_floor import views

urlpatterns = [
    path("purchases", views.PurchaseView.as_view()),
    path("members", views.MemberByPhoneView.as_view()),
    path("members/<str:card_number>", views.MemberView.as_view()),
]
