from django.urls import path

from inbox.organize import views

app_name = "organize"

urlpatterns = [
    path("bulk/", views.bulk, name="bulk"),
    path("bulk/choices/", views.bulk_choices, name="bulk_choices"),
    path("views/", views.save_view, name="save_view"),
    path("views/manage/", views.manage, name="manage"),
    path("views/<int:pk>/", views.update_view, name="update_view"),
    path("views/<int:pk>/delete/", views.delete_view, name="delete_view"),
]
