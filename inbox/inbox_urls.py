from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("sessions/<int:pk>/", views.thread, name="thread"),
]
