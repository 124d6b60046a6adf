from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from apps.core import daphne_http

        daphne_http.install()

        from apps.core import admin_display

        admin_display.install()
        admin_display.translate_model_names()
