"""Celery application: Redis broker, tasks autodiscovered from every app's `tasks.py`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")

app = Celery("evplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
