from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LiveConfig(AppConfig):
    name = "inbox.live"
    label = "live"
    verbose_name = _("Live presence")

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from inbox.live.store import forget_store_on_setting_change

        setting_changed.connect(forget_store_on_setting_change, dispatch_uid="live.store_settings")
