"""A stand-in roaming partner for authorization tests: answers from a table the test fills in.

The real authorizers (OCPI, OICP) speak HTTP and come with the roaming issues; this one only plays the
RoamingAuthorizer interface, and records who asked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apps.customers.authorization import RoamingAuthorization
from apps.tenants.models import Tenant


class TablePartner:
    answers: ClassVar[dict[str, RoamingAuthorization]] = {}
    calls: ClassVar[list[tuple[int, str, Any]]] = []

    def authorize(
        self, *, tenant: Tenant, id_tag: str, location_id: Any | None, at: dt.datetime
    ) -> RoamingAuthorization | None:
        TablePartner.calls.append((tenant.pk, id_tag, location_id))
        return TablePartner.answers.get(id_tag)


class SilentPartner:
    """Knows no token at all."""

    def authorize(self, **kwargs: Any) -> RoamingAuthorization | None:
        return None


class BrokenPartner:
    """A partner whose endpoint is down."""

    def authorize(self, **kwargs: Any) -> RoamingAuthorization | None:
        raise ConnectionError("partner unreachable")
