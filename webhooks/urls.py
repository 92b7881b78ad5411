from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.subscription_list, name="subscription-list"),
    path("new/", views.subscription_create, name="subscription-create"),
    path("<int:pk>/", views.subscription_edit, name="subscription-edit"),
    path("<int:pk>/delete/", views.subscription_delete, name="subscription-delete"),
    path("<int:pk>/rotate/", views.subscription_rotate, name="subscription-rotate"),
    path("deliveries/", views.delivery_list, name="delivery-list"),
    path("deliveries/<int:pk>/resend/", views.delivery_resend, name="delivery-resend"),
    path("signing/", views.signing, name="signing"),
]
