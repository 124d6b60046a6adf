from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from apps.core import daphne_http

        daphne_http.install()

        from apps.core import admin_display

        admin_display.install()
        admin_display.translate_model_names()
