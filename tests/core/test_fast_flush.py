"""The transactional tests' teardown (tests/fast_flush.py) empties what a test wrote, rows guarded by
delete-refusing triggers included, and keeps the content types and permissions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.billing.models import Invoice, InvoiceStatus
from apps.sessions.models import Cdr
from apps.tenants.models import Tenant
from tests import fast_flush
from tests.billing.factories import issued_invoice
from tests.charging.factories import CdrFactory
from tests.tenants.factories import TenantFactory


@pytest.mark.django_db(transaction=True)
def test_the_teardown_empties_every_written_table_and_keeps_content_types() -> None:
    tenant = TenantFactory()
    invoice = issued_invoice(tenant)
    CdrFactory(session__tenant=tenant)
    assert invoice.status == InvoiceStatus.ISSUED
    types, permissions = ContentType.objects.count(), Permission.objects.count()
    assert types > 50
    assert permissions > 200

    assert fast_flush._empty("default")

    assert (Tenant.objects.count(), Invoice.objects.count(), Cdr.objects.count()) == (0, 0, 0)
    assert (ContentType.objects.count(), Permission.objects.count()) == (types, permissions)
    # the triggers are on again for whatever runs next on this connection (the role was local to the teardown)
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone() == ("origin",)
