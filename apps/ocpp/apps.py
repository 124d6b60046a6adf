from django.apps import AppConfig


class OcppConfig(AppConfig):
    name = "apps.ocpp"
    label = "ocpp"
    verbose_name = "OCPP"

    def ready(self) -> None:
        from apps.ocpp import daphne_patch

        daphne_patch.install()
