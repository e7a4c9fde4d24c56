from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InboxConfig(AppConfig):
    # This module holds a second AppConfig (django-axes under its own name): say which is ours.
    default = True
    name = "inbox"
    verbose_name = _("Inbox")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from inbox.counters import ensure_triggers
        from inbox.middleware import note_activity_at_sign_in

        user_logged_in.connect(note_activity_at_sign_in, dispatch_uid="inbox.activity_at_sign_in")
        post_migrate.connect(ensure_triggers, sender=self, dispatch_uid="inbox.counter_triggers")


class SignInLockoutsConfig(AxesAppConfig):
    """django-axes, under a name admin's index can show in either language (its own is "Axes")."""

    verbose_name = _("Sign-in lockouts")
