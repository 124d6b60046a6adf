from django.apps import AppConfig


class SessionsConfig(AppConfig):
    name = "apps.sessions"
    label = "charging"
    verbose_name = "Charging sessions"
