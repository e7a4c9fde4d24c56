from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("poll/", views.sessions_poll, name="sessions_poll"),
    path("search/", views.search, name="search"),
    path("sessions/<int:pk>/", views.thread, name="thread"),
    path("sessions/<int:pk>/poll/", views.thread_poll, name="thread_poll"),
    path("messages/<int:pk>/image/", views.image, name="image"),
    path("messages/<int:pk>/image/load/", views.load_image, name="load_image"),
]
