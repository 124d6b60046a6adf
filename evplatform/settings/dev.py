"""Local development: the embedded stack of `make run`."""

from .base import *  # noqa: F403
from .base import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
# daphne serves static files through WhiteNoise straight from the apps (no collectstatic in development)
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # served from the apps by the finders; collectstatic is for production images
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# the demo's local Hubject (`manage.py oicp_demo_hub`, on 127.0.0.1) calls /oicp with the headers a TLS proxy adds
# after verifying its client certificate; production sets the subject of Hubject's real certificate
OICP_INBOUND_CLIENT_DN = env_str("OICP_INBOUND_CLIENT_DN", "CN=hubject-hbs")
