from django.urls import path

from inbox.reports import views

urlpatterns = [
    path("", views.report, name="reports"),
]
