"""For the demo's roaming simulators (`make run`): wait until the platform answers before registering with it."""

from __future__ import annotations

import time

import requests
from django.core.management.base import CommandError


def wait_for(url: str, seconds: float) -> None:
    """Return once `url` answers at all (any status); CommandError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise CommandError(f"The platform does not answer at {url}.") from None
            time.sleep(1)
