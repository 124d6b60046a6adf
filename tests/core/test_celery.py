"""A real Celery worker process takes tasks from the real Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from apps.core.tasks import ping

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_worker_runs_task_from_redis_broker() -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    key = f"evp-test-ping-{uuid.uuid4().hex}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "evplatform",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "evplatform.settings.test"},
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        ping.apply_async(args=[key], queue=queue)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.get(key) is None:
            assert worker.poll() is None, "worker exited"
            time.sleep(0.1)

        assert client.get(key) == b"pong"
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        client.delete(key)
        client.delete(queue)
        client.close()
