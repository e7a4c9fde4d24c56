from django.urls import include, path

from inbox import views
from inbox.suggestions import views as suggestions_views

app_name = "inbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("poll/", views.sessions_poll, name="sessions_poll"),
    path("search/", views.search, name="search"),
    path("sessions/<int:pk>/", views.thread, name="thread"),
    path("sessions/<int:pk>/poll/", views.thread_poll, name="thread_poll"),
    path("sessions/<int:pk>/compose/", views.compose, name="compose"),
    path("sessions/<int:pk>/image/", views.send_image, name="send_image"),
    path("sessions/<int:pk>/status/", views.set_status, name="set_status"),
    path("sessions/<int:pk>/assign/", views.assign, name="assign"),
    path("sessions/<int:pk>/canned/", views.canned_replies, name="canned_replies"),
    path("sessions/<int:pk>/suggestions/", suggestions_views.strip, name="suggestions"),
    path("messages/<int:pk>/image/", views.image, name="image"),
    path("messages/<int:pk>/image/load/", views.load_image, name="load_image"),
    path("messages/<int:pk>/retry/", views.retry, name="retry"),
    path("", include("inbox.pictures.urls")),
    path("reports/", include("inbox.reports.urls")),
    path("", include("inbox.labels.urls")),
    path("", include("inbox.viewers.urls")),
    path("live/", include("inbox.live.urls")),
    path("team/", include("inbox.team.urls")),
    path("organize/", include("inbox.organize.urls")),
]
