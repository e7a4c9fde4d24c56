from django.urls import path

from inbox.live import views

app_name = "live"

urlpatterns = [
    path("heartbeat/", views.heartbeat, name="heartbeat"),
    path("close/", views.close_tab, name="close"),
    path("status/", views.set_status, name="status"),
    path("events/", views.events, name="events"),
]
