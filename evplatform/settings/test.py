"""Test settings: real PostgreSQL and Redis (from DATABASE_URL / REDIS_URL, set up by `make test`)."""

import os

from .base import *  # noqa: F403
from .base import CACHES, CHANNEL_LAYERS

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; real hashers in prod
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# every run (and every xdist worker) keeps its Redis keys apart
_run = os.environ.get("PYTEST_XDIST_WORKER", "main") + "-" + str(os.getpid())
CACHES["default"]["KEY_PREFIX"] = f"evp-test-{_run}"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"evp-test-{_run}"  # type: ignore[index]
CELERY_TASK_ALWAYS_EAGER = False
# events are delivered in the publishing thread right after commit (deterministic tests); tests of the Celery
# path set EVENTS_DELIVERY=celery (and their own queue) for the worker they start
EVENTS_DELIVERY = os.environ.get("EVENTS_DELIVERY", "inline")
EVENTS_OUTBOX_KICK_KEY = os.environ.get("EVENTS_OUTBOX_KICK_KEY", f"evp-test-{_run}:outbox:kick")
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # served from the apps by the finders; collectstatic is for production images
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = BASE_DIR / ".data" / "test-media"  # noqa: F405
# a throwaway database per test process, so concurrent runs on one server never collide
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405
# tests and the API fuzz call OCPI partners (the partner simulator) on this machine only
OCPI_OUTBOUND_HOSTS = ["127.0.0.1", "localhost"]
