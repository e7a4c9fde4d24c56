from django.urls import re_path

from inbox.pictures import views

app_name = "pictures"

urlpatterns = [
    re_path(
        r"^messages/(?P<pk>[0-9]+)/picture/(?P<kind>thumb|full)/$", views.picture, name="picture"
    ),
]
