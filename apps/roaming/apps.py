from django.apps import AppConfig


class RoamingConfig(AppConfig):
    name = "apps.roaming"
    label = "roaming"
    verbose_name = "Roaming"
