from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InboxConfig(AppConfig):
    name = "inbox"
    verbose_name = _("Inbox")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from inbox.middleware import note_activity_at_sign_in

        user_logged_in.connect(note_activity_at_sign_in, dispatch_uid="inbox.activity_at_sign_in")
