from django.urls import path

from inbox.viewers import views

# Included by inbox.inbox_urls, so the names are inbox:viewer_….
urlpatterns = [
    path("sessions/<int:pk>/viewer/", views.panel, name="viewer_panel"),
    path("sessions/<int:pk>/viewer/notes/", views.add_note, name="viewer_add_note"),
    path("sessions/<int:pk>/viewer/notes/<int:note_pk>/", views.edit_note, name="viewer_edit_note"),
    path(
        "sessions/<int:pk>/viewer/notes/<int:note_pk>/delete/",
        views.delete_note,
        name="viewer_delete_note",
    ),
    path("sessions/<int:pk>/viewer/labels/", views.change_label, name="viewer_change_label"),
    path("viewers/<int:viewer_pk>/avatar/", views.avatar, name="viewer_avatar"),
]
