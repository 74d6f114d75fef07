"""dripline.bulk.commands: bulk operations over campaigns (applied by the scheduler), keyed by
operation id, and bulk actions over contacts asked for by other systems (recorded by the API,
which owns bulk requests; issue 16), keyed by action id. Each service takes the other's type
without effect, so neither dead-letters it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from shared.domain.bulk_actions import BulkActionType, ContactFilter, Mode
from shared.domain.bulk_operations import BulkAction, CampaignFilter
from shared.messaging.contracts.base import (
    EXAMPLE_BULK_ACTION,
    EXAMPLE_CAMPAIGN,
    EXAMPLE_CONTACT,
    EXAMPLE_OPERATION,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic

MAX_CAMPAIGNS_PER_BULK = 50_000


class BulkOperationRequest(Payload):
    """A bulk operation over campaigns (spec 000): campaign_ids, or a filter meaning every
    campaign that matches and that the actor can see in that view mode."""

    operation_id: UUID = Field(
        description="Chosen by the requester; a repeated request with this id is applied once."
    )
    action: BulkAction
    campaign_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_CAMPAIGNS_PER_BULK
    )
    filter: CampaignFilter | None = None
    reset_completed: bool = Field(
        default=False, description="launch only: also restart completed executions."
    )

    @model_validator(mode="after")
    def _one_selection(self) -> BulkOperationRequest:
        if (self.campaign_ids is None) == (self.filter is None):
            raise ValueError("give either campaign_ids or filter, not both and not neither")
        return self


OPERATION_REQUESTED = Contract(
    Topic.BULK_COMMANDS,
    MessageType.BULK_OPERATION_REQUESTED,
    1,
    BulkOperationRequest,
    True,
    {
        "operation_id": EXAMPLE_OPERATION,
        "action": "stop",
        "campaign_ids": None,
        "filter": {
            "view_mode": "all",
            "status": ["active"],
            "enabled": None,
            "launch_type": None,
            "tag": "spring",
            "channel": None,
            "created_by": None,
            "search": None,
        },
        "reset_completed": False,
    },
)
MAX_CONTACTS_PER_BULK_ACTION = 100_000


class BulkActionRequest(Payload):
    """A bulk action over contacts, as `POST /bulk-actions` takes it (docs/bulk.md), from
    another system: the same actions, parameters, selection (contact_ids or a filter) and plan
    (all at once, scheduled with start_at, or drip with its settings), checked by the same code.
    Accepted, it is answered by bulk_action.changed (the action as recorded, with the command's
    correlation id) and then the bulk_action.progressed / completed events every bulk action
    emits; refused, by bulk_action.rejected."""

    action_id: UUID = Field(
        description="Chosen by the requester; a repeated request with this id is recorded once, "
        "and every event of the action names it."
    )
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    action: BulkActionType
    contact_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_CONTACTS_PER_BULK_ACTION
    )
    filter: ContactFilter | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    mode: Mode = Mode.ALL_AT_ONCE
    start_at: datetime | None = None
    drip: dict[str, Any] | None = Field(
        default=None,
        description="Drip mode's settings, as the HTTP API takes them: batch_size, every, unit, "
        "allowed_days, window_start, window_end, timezone, start_at.",
    )


ACTION_REQUESTED = Contract(
    Topic.BULK_COMMANDS,
    MessageType.BULK_ACTION_REQUESTED,
    1,
    BulkActionRequest,
    True,
    {
        "action_id": EXAMPLE_BULK_ACTION,
        "name": "Enrol the CRM's new leads",
        "action": "add_to_campaign",
        "contact_ids": [EXAMPLE_CONTACT],
        "filter": None,
        "params": {"campaign_id": EXAMPLE_CAMPAIGN},
        "mode": "drip",
        "start_at": None,
        "drip": {"batch_size": 50, "every": 1, "unit": "hours"},
    },
)

BulkCommand = BulkOperationRequest | BulkActionRequest
CONTRACTS: tuple[Contract[BulkCommand], ...] = (OPERATION_REQUESTED, ACTION_REQUESTED)
