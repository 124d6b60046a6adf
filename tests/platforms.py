"""Whole platforms in processes, for the tests where two of them meet (eRoaming between two instances).

`Platform` is one instance of the product as it runs in production: a daphne serving HTTP, the admin, the API,
OCPI and OCPP, and a Celery worker on all of its queues, on a database of its own (created in the test cluster
and migrated by `manage.py migrate`, dropped at the end) and with Redis key prefixes of its own (cache, channel
layer, queues, outbox kick), so two platforms share the test PostgreSQL and Redis servers and nothing else.
`platform_for_test_db()` is the same around the test run's own database (what the test process sees).

Its `admin()` is a logged-in requests session on the admin (CSRF handled), to drive the platform as an operator
does; `python(code)` runs code inside the platform (`manage.py shell`) for the set-up an operator would do by hand.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import requests
from django.conf import settings
from django.db import connections

from tests.ocpp.processes import ROOT, CeleryWorker, Daphne, server_env

QUEUES = ("celery", "events", "ocpp", "energy", "exports", "billing", "roaming")


def _database_url(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + quote(name)))


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_database_url("postgres"), autocommit=True)


def _template_name() -> str:
    return f"{settings.DATABASES['default']['NAME']}_template"


def make_template() -> None:
    """Copy the freshly migrated test database to the template every platform's database is copied from.

    Made at the start of the session (tests/conftest.py), while nobody else is connected: CREATE DATABASE copies
    only a database without other connections, and later in the run this process's daphne thread, its executor
    threads and servers of other tests hold connections to the test database itself."""
    connections.close_all()
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_template_name()}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{_template_name()}" TEMPLATE "{settings.DATABASES["default"]["NAME"]}"')


def drop_template() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_template_name()}" WITH (FORCE)')


@dataclass
class Platform:
    name: str
    database: str
    own_database: bool = True
    prefix: str = field(default_factory=lambda: f"p{uuid.uuid4().hex[:8]}-")
    web: Daphne | None = None
    worker: CeleryWorker | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": _database_url(self.database),
            "CELERY_QUEUE_PREFIX": self.prefix,
            "EVENTS_OUTBOX_KICK_KEY": f"{self.prefix}outbox-kick",
            "CACHE_KEY_PREFIX": f"{self.prefix}cache",
            "CHANNEL_LAYER_PREFIX": f"{self.prefix}asgi",
            "OCPI_OUTBOUND_HOSTS": "127.0.0.1,localhost",
            # a partner's live session PATCHed every 5 s, not every minute: the journey tests wait for two of them
            "OCPI_SESSION_PUSH_INTERVAL": "5",
        }

    @property
    def url(self) -> str:
        assert self.web is not None, "not started"
        return f"http://127.0.0.1:{self.web.port}"

    def _manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**server_env(**self.env)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed on {self.name}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def python(self, code: str) -> str:
        """Run `code` inside the platform (Django set up on its database); what it printed."""
        return self._manage("shell", "-c", code)

    def start(self) -> Platform:
        if self.own_database:
            # a copy of the migrated test database as the session started (make_template): 1-2 s, where `migrate`
            # on a new database takes 30 s on a quiet machine and minutes on a busy one
            with _admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{_template_name()}"')
            self._manage("migrate", "--noinput", timeout=600)  # nothing to do: checks the copy is current
        self.web = Daphne(env=self.env).start(timeout=60)
        self.worker = CeleryWorker([self.prefix + q for q in QUEUES], self.env).start()
        return self

    def stop(self) -> None:
        for process in (self.worker, self.web):
            if process is not None:
                process.stop()
        if self.own_database:
            with _admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def admin(self, username: str, password: str) -> requests.Session:
        """A session logged in to the admin as `username`."""
        session = requests.Session()
        login = f"{self.url}/admin/login/"
        session.get(login, timeout=30).raise_for_status()
        answer = session.post(
            login,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Referer": login},
            timeout=30,
        )
        answer.raise_for_status()
        if "sessionid" not in session.cookies:
            raise RuntimeError(f"admin login as {username} failed on {self.name}")
        return session


def admin_post(session: requests.Session, url: str, data: dict[str, object]) -> requests.Response:
    """POST an admin form (an action, a change form) with the session's CSRF token."""
    answer = session.post(
        url, data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}, headers={"Referer": url}, timeout=60
    )
    answer.raise_for_status()
    return answer


def admin_messages(html: str) -> list[str]:
    """The texts of the admin's messages on a page (success, warning and error)."""
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r'<li class="[^"]*">(.*?)</li>', html, re.S)]


def peer_platform(name: str = "peer") -> Platform:
    """A second platform on a database of its own, next to this test run's."""
    return Platform(name=name, database=f"{settings.DATABASES['default']['NAME']}_{name}")


def platform_for_test_db() -> Platform:
    """This test run's database served by its own daphne and worker (what the test process writes, they serve)."""
    return Platform(name="self", database=str(settings.DATABASES["default"]["NAME"]), own_database=False)
