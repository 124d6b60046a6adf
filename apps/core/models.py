"""Kernel model bases. Keep this module tiny: nothing here knows about tenants or charging."""

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class History(models.Model):
    """Marker: rows that record what happened (sessions, CDRs, invoices and their lines, payments, meter values).

    Every foreign key of a history row is PROTECT (or SET_NULL where the row keeps a snapshot of what it pointed
    at), so deleting what history points to is refused on every path: API, admin, shell, a cascade from a parent
    (`tests/test_history.py` checks every model). Admin pages never offer to delete history rows."""

    class Meta:
        abstract = True


class AuditLog(History):
    """Marker: append-only logs (command and OCPP frame logs, state-change events, webhook deliveries, grid
    signals ...). Read-only for every user, superusers included, in the admin and the API; only the retention
    jobs delete them."""

    class Meta:
        abstract = True
