from django.apps import AppConfig


class EnergyConfig(AppConfig):
    name = "apps.energy"
    label = "energy"
    verbose_name = "Energy management"
