from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LabelsConfig(AppConfig):
    name = "inbox.labels"
    label = "labels"
    verbose_name = _("Labels")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from inbox.labels.counters import ensure_triggers

        post_migrate.connect(ensure_triggers, sender=self, dispatch_uid="labels.counter_triggers")
