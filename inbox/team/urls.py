from django.urls import path

from inbox.team import views

app_name = "team"

urlpatterns = [
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/poll/", views.poll, name="poll"),
    path("notifications/read/", views.mark_all_read, name="mark_all_read"),
    path("notifications/open/", views.open_notification, name="open"),
    path("preferences/", views.preferences, name="preferences"),
    path("sessions/<int:pk>/members/", views.mention_candidates, name="mention_candidates"),
]
