from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrganizeConfig(AppConfig):
    name = "inbox.organize"
    label = "organize"
    verbose_name = _("Saved views")
