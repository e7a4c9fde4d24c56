from django.urls import path

from inbox.labels import views

urlpatterns = [
    path("sessions/<int:pk>/labels/", views.picker, name="labels_picker"),
    path("sessions/<int:pk>/labels/change/", views.change, name="labels_change"),
]
