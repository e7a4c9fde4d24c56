from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from inbox import health, media

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", health.healthz, name="healthz"),
    re_path(
        r"^media/replies/(?P<year>\d{4})/(?P<month>\d{2})/(?P<name>[0-9a-f]{32})"
        r"\.(?P<extension>png|jpg|gif|webp)$",
        media.reply_image,
        name="reply-image",
    ),
    path("", include("inbox.inbox_urls")),
]
