"""dripline.opportunity.events: an opportunity entered a pipeline stage, for the systems that
follow a lead's progress (a CRM, a report), keyed by the opportunity's id so that one
opportunity's moves arrive in order."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.domain.crm import OpportunityStatus
from shared.messaging.contracts.base import (
    EXAMPLE_CONTACT,
    EXAMPLE_OPERATION,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic

EXAMPLE_OPPORTUNITY = "6b5a4938-2716-4a5b-8c9d-0e1f2a3b4c5d"
EXAMPLE_PIPELINE = "4a3b2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
EXAMPLE_STAGE = "8c7b6a59-4837-4261-9504-f3e2d1c0b9a8"
EXAMPLE_PREVIOUS_STAGE = "0f1e2d3c-4b5a-4697-8877-665544332211"


class OpportunityStageChanged(Payload):
    """A new opportunity (previous_stage_id null) or a move to another stage."""

    opportunity_id: UUID
    pipeline_id: UUID
    contact_id: UUID
    previous_stage_id: UUID | None
    stage_id: UUID
    stage_name: str
    status: OpportunityStatus
    value: Decimal | None = None
    source: Literal["api", "bulk_action", "flow"] = Field(
        description="api: PATCH /opportunities/{id}; bulk_action: an upsert_opportunities batch;"
        " flow: a campaign flow's set_opportunity_stage node (campaign_id, execution_id)."
    )
    bulk_action_id: UUID | None = None
    campaign_id: UUID | None = Field(default=None, description="source flow: the campaign")
    execution_id: UUID | None = Field(
        default=None, description="source flow: the contact's execution that made the move"
    )


STAGE_CHANGED = Contract(
    Topic.OPPORTUNITY_EVENTS,
    MessageType.OPPORTUNITY_STAGE_CHANGED,
    1,
    OpportunityStageChanged,
    False,
    {
        "opportunity_id": EXAMPLE_OPPORTUNITY,
        "pipeline_id": EXAMPLE_PIPELINE,
        "contact_id": EXAMPLE_CONTACT,
        "previous_stage_id": EXAMPLE_PREVIOUS_STAGE,
        "stage_id": EXAMPLE_STAGE,
        "stage_name": "Demo booked",
        "status": "open",
        "value": "1500.00",
        "source": "bulk_action",
        "bulk_action_id": EXAMPLE_OPERATION,
        "campaign_id": None,
        "execution_id": None,
    },
)
CONTRACTS: tuple[Contract[OpportunityStageChanged], ...] = (STAGE_CHANGED,)
