"""The campaign events the scheduler's own sweeps and reactions emit (no command behind them)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.messaging.contracts import CampaignStatusChanged, MessageType
from shared.messaging.envelope import new_envelope
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic


def status_changed(
    outbox: Outbox,
    campaign: Mapping[str, Any],
    *,
    previous_status: str,
    status: str,
    cause: str,
    now: datetime,
    causation_id: UUID | None = None,
) -> None:
    """A campaign's status change; `campaign` needs its id and enabled flag."""
    event = CampaignStatusChanged(
        campaign_id=campaign["id"],
        previous_status=previous_status,
        status=status,
        enabled=campaign["enabled"],
        cause=cause,
        previous_enabled=campaign["enabled"],
    )
    envelope = new_envelope(
        type=MessageType.CAMPAIGN_STATUS_CHANGED,
        payload=event,
        occurred_at=now,
        actor=None,
        causation_id=causation_id,
    )
    outbox.add(Topic.CAMPAIGN_EVENTS, str(campaign["id"]), envelope)
