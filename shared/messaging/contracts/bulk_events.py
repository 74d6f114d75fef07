"""dripline.bulk.events: the progress of bulk operations (over campaigns) and bulk actions
(over contacts), keyed by the operation's or action's id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from shared.domain.bulk_operations import ItemResult
from shared.domain.progress import OperationProgress, Progress
from shared.messaging.contracts.base import (
    EXAMPLE_BULK_ACTION,
    EXAMPLE_CAMPAIGN,
    EXAMPLE_COPY,
    EXAMPLE_OPERATION,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic


class BulkItemOutcome(Payload):
    campaign_id: UUID
    result: ItemResult
    code: str
    message: str
    cancelled_executions: int = 0


class BulkOperationProgress(OperationProgress, Payload):
    """Where an operation stands, as the API's view of it shows it; `items` are the outcomes of
    the batch just processed (empty in bulk_operation.completed, which closes the operation)."""

    operation_id: UUID
    items: list[BulkItemOutcome] = Field(default_factory=list)


class BulkActionProgress(Progress, Payload):
    """A bulk action over contacts after a batch (progressed), at its end (completed), or as
    its owner paused, resumed, cancelled or edited it (changed, batch_size 0)."""

    action_id: UUID
    name: str
    action: str
    status: str
    batch: int = Field(description="Batches released so far.")
    batch_size: int = Field(description="Contacts in the batch just processed.")
    next_batch_at: datetime | None = None

    @classmethod
    def of(cls, action: Mapping[str, Any], batch_size: int = 0) -> BulkActionProgress:
        """From a `bulk_actions` row, after a batch of `batch_size` contacts (0: no batch)."""
        return cls(
            action_id=action["id"],
            name=action["name"],
            action=action["action"],
            status=action["status"],
            batch=action["batches"],
            batch_size=batch_size,
            total=action["total"],
            processed=action["processed"],
            success_count=action["success_count"],
            skipped_count=action["skipped_count"],
            error_count=action["error_count"],
            next_batch_at=action["next_batch_at"],
        )


class BulkActionRejected(Payload):
    """A bulk_action.requested that was understood but is not recorded: its parameters,
    selection or plan do not hold, or the actor may not do it (the codes of the HTTP API's
    problems, e.g. validation_error, not_a_member)."""

    action_id: UUID
    code: str
    message: str
    errors: list[str] = Field(default_factory=list)


# What a consumer of this topic may be handed.
BulkEvent = BulkOperationProgress | BulkActionProgress | BulkActionRejected

_PROGRESS: dict[str, Any] = {
    "operation_id": EXAMPLE_OPERATION,
    "action": "stop",
    "status": "processing",
    "total": 3,
    "processed": 2,
    "success_count": 1,
    "skipped_count": 1,
    "error_count": 0,
    "cancelled_executions": 120,
    "error_message": None,
    "items": [],
}
_B = Topic.BULK_EVENTS
CONTRACTS: tuple[Contract[BulkEvent], ...] = (
    Contract(
        _B,
        MessageType.BULK_OPERATION_PROGRESSED,
        1,
        BulkOperationProgress,
        False,
        {
            **_PROGRESS,
            "items": [
                {
                    "campaign_id": EXAMPLE_CAMPAIGN,
                    "result": "succeeded",
                    "code": "stopped",
                    "message": "campaign stopped",
                    "cancelled_executions": 120,
                },
                {
                    "campaign_id": EXAMPLE_COPY,
                    "result": "skipped",
                    "code": "invalid_status",
                    "message": "only active and paused campaigns are stopped, not draft",
                    "cancelled_executions": 0,
                },
            ],
        },
    ),
    *(
        Contract(
            _B,
            kind,
            1,
            BulkActionProgress,
            False,
            {
                "action_id": EXAMPLE_OPERATION,
                "name": "Spring outreach",
                "action": "send_message",
                "status": status,
                "batch": 2,
                "batch_size": 100,
                "total": 250,
                "processed": 200,
                "success_count": 198,
                "skipped_count": 1,
                "error_count": 1,
                "next_batch_at": next_at,
            },
        )
        for kind, status, next_at in (
            (MessageType.BULK_ACTION_PROGRESSED, "processing", "2026-11-22T15:00:00Z"),
            (MessageType.BULK_ACTION_COMPLETED, "completed", None),
        )
    ),
    Contract(
        _B,
        MessageType.BULK_ACTION_CHANGED,
        1,
        BulkActionProgress,
        True,
        {
            "action_id": EXAMPLE_OPERATION,
            "name": "Spring outreach",
            "action": "send_message",
            "status": "paused",
            "batch": 2,
            "batch_size": 0,
            "total": 250,
            "processed": 200,
            "success_count": 198,
            "skipped_count": 1,
            "error_count": 1,
            "next_batch_at": "2026-11-22T15:00:00Z",
        },
    ),
    Contract(
        _B,
        MessageType.BULK_OPERATION_COMPLETED,
        1,
        BulkOperationProgress,
        False,
        {**_PROGRESS, "status": "completed", "processed": 3, "error_count": 1},
    ),
    Contract(
        _B,
        MessageType.BULK_ACTION_REJECTED,
        1,
        BulkActionRejected,
        True,
        {
            "action_id": EXAMPLE_BULK_ACTION,
            "code": "validation_error",
            "message": "the request does not hold",
            "errors": ["params.campaign_id: no such campaign"],
        },
    ),
)
