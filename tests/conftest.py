from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.tenants.models import Role, Tenant, User
from tests import fast_flush
from tests.asgi_server import DaphneThread, daphne_server, stop_daphne
from tests.replica import Replica
from tests.replica import streaming_replica as start_streaming_replica
from tests.tenants.factories import MembershipFactory, TenantFactory, UserFactory, api_key_for

fast_flush.install()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, and the template of tests/platforms.py's platforms copied from it while no
    one else is connected (tests/platforms.py, make_template)."""
    from tests.platforms import drop_template, make_template

    with django_db_blocker.unblock():
        make_template()
    yield
    with django_db_blocker.unblock():
        drop_template()


@pytest.fixture(scope="session")
def daphne(django_db_setup: None) -> Iterator[DaphneThread]:
    """This test process's daphne (tests/asgi_server.py), stopped before the test database is dropped."""
    yield daphne_server()
    stop_daphne()


@pytest.fixture
def streaming_replica(transactional_db: None) -> Iterator[Replica]:
    """A hot standby of the test cluster, streaming from it (tests/replica.py); stopped and deleted afterwards."""
    with start_streaming_replica() as replica:
        yield replica


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    return TenantFactory(name="Alpha Charge", slug="alpha", ocpi_country_code="DE", ocpi_party_id="ALP")


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    return TenantFactory(name="Beta Volt", slug="beta", ocpi_country_code="NL", ocpi_party_id="BET")


@pytest.fixture
def make_staff(db: None) -> Callable[..., User]:
    def make(tenant: Tenant, role: str = Role.ADMIN, **kwargs: object) -> User:
        return MembershipFactory(tenant=tenant, role=role, user=UserFactory(**kwargs)).user

    return make


@pytest.fixture
def superuser(db: None) -> User:
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(make_staff: Callable[..., User]) -> Callable[..., APIClient]:
    """An API client logged in as a new staff user with `role` in `tenant`."""

    def make(tenant: Tenant, role: str = Role.ADMIN) -> APIClient:
        client = APIClient()
        client.force_authenticate(make_staff(tenant, role))
        return client

    return make


@pytest.fixture
def key_client_for(db: None) -> Callable[..., APIClient]:
    """An API client authenticated with a real API key of `tenant`."""

    def make(tenant: Tenant, scopes: list[str] | None = None) -> APIClient:
        _, raw = api_key_for(tenant, scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client

    return make


DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest test files first. `make test` hands whole files to its two workers (`--dist loadfile`) in
    collection order (`--no-loadscope-reorder`); left in pytest-xdist's own order (most tests first), the browser
    walks, few tests but minutes each, came last, and one worker ran them alone for minutes after the other had
    finished. Seconds per file from the last measured full run (`tests/durations.json`, written by
    `scripts/test_durations.py` from `--durations=0`); a file not listed keeps its place after the listed ones.
    Within a file the order is unchanged (module fixtures)."""
    seconds: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    root = Path(str(config.rootpath))
    position = {item: n for n, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[float, int]:
        path = Path(str(item.path)).relative_to(root).as_posix()
        return (-seconds.get(path, 0.0), position[item])

    items.sort(key=key)
