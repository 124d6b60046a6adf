"""Celery tasks of the stations domain (interfaces: load by id, call a service, idempotent)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.stations import services
from apps.stations.models import FirmwareCampaign


@shared_task(name="stations.mark_offline")
def mark_offline() -> int:
    """Beat: chargers without any frame for heartbeat_interval x OCPP_OFFLINE_FACTOR go offline."""
    return len(services.charge_points_mark_offline())


@shared_task(name="stations.provision_passwords")
def provision_passwords() -> int:
    """Beat: connected, accepted chargers still without their own password are offered one again."""
    return services.charge_points_provision()


@shared_task(name="stations.firmware_campaign_run")
def firmware_campaign_run(campaign_id: int) -> None:
    campaign = FirmwareCampaign.objects.select_related("firmware").filter(pk=campaign_id).first()
    if campaign is not None:
        services.firmware_campaign_run(campaign=campaign, base_url=settings.OCPP_FILES_BASE_URL)
