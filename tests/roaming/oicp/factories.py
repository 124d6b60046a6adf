"""A tenant's Hubject connection for tests: a client certificate from a throwaway CA (hub_sim.LocalCA)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from apps.roaming.models import OicpConnection
from apps.roaming.oicp import services
from apps.roaming.oicp.hub_sim import CertPair, LocalCA
from apps.tenants.models import Tenant


def pem(pair: CertPair) -> tuple[str, str]:
    return pair.cert.read_text(), pair.key.read_text()


def oicp_connection_for(
    tenant: Tenant, *, pki: LocalCA | None = None, common_name: str = "cpo.voltnet", **fields: Any
) -> OicpConnection:
    pki = pki or LocalCA(Path(tempfile.mkdtemp(prefix="evp-oicp-test-")))
    certificate, key = pem(pki.issue(common_name))
    fields.setdefault("environment", "custom")
    fields.setdefault("base_url", "https://127.0.0.1:9/api/oicp")
    fields.setdefault("operator_id", "DE*ABC")
    fields.setdefault("provider_id", "DE-DCB")
    fields.setdefault("server_ca", pki.ca_file.read_text())
    return services.oicp_connection_create(tenant=tenant, certificate_pem=certificate, key_pem=key, **fields)
