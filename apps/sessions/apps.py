from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SessionsConfig(AppConfig):
    name = "apps.sessions"
    label = "charging"
    verbose_name = _("Charging sessions")
