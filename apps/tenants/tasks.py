"""Celery interfaces of tenancy: take ids, load, call a service. Each may run twice without harm."""

from __future__ import annotations

from celery import shared_task

from apps.tenants.models import Invitation


@shared_task(name="tenants.invitation_send", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invitation_send(invitation_id: int) -> None:
    """E-mail an open invitation's link (derived from the stored nonce and the server's secret key, so the secret
    never travels through the broker). Sent once per link: a re-run after success sends nothing."""
    from apps.tenants import services

    invitation = Invitation.objects.select_related("tenant").filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_open or invitation.sent_at is not None:
        return
    services.invitation_send_email(invitation=invitation)
