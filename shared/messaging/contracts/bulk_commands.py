"""dripline.bulk.commands: bulk operations over campaigns, keyed by operation id."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field, model_validator

from shared.domain.bulk_operations import BulkAction, CampaignFilter
from shared.messaging.contracts.base import EXAMPLE_OPERATION, Contract, MessageType, Payload
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
CONTRACTS: tuple[Contract[BulkOperationRequest], ...] = (OPERATION_REQUESTED,)
