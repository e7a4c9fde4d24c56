from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ViewersConfig(AppConfig):
    name = "inbox.viewers"
    label = "viewers"
    verbose_name = _("Viewers")
