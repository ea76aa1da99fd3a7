"""Public pages of the outbox (no login): the unsubscribe link. Included from patron.urls."""

from django.urls import path

from patron.outbox import views

app_name = "outbox"
urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
