"""A bulk operation's progress is one model (shared/domain/progress.py's OperationProgress): its
progress event and its API view are built from its row by the same mapping, so they cannot show
different figures."""

from __future__ import annotations

from uuid import uuid4

from services.api.bulk_operations import BulkOperation
from shared.db.rows import BulkOperationRow
from shared.domain.bulk_operations import BulkStatus
from shared.domain.progress import OperationProgress
from shared.messaging.contracts import BulkItemOutcome, BulkOperationProgress
from tests.builders import operation_row

ROW = BulkOperationRow.from_row(
    operation_row(
        status="failed", total=5, processed=4, success_count=1, skipped_count=2, error_count=1,
        cancelled_executions=7, error_message="the requester left the organization",
    )
)  # fmt: skip


def progress_of(model: OperationProgress) -> dict[str, object]:
    return model.model_dump(include=set(OperationProgress.model_fields))


def test_the_event_and_the_view_show_the_rows_progress_alike() -> None:
    event = BulkOperationProgress.of_operation(ROW, operation_id=ROW.id)
    view = BulkOperation.of(ROW, "ada@example.com")
    expected = {
        "total": 5, "processed": 4, "success_count": 1, "skipped_count": 2, "error_count": 1,
        "action": ROW.action, "status": BulkStatus.FAILED, "cancelled_executions": 7,
        "error_message": "the requester left the organization",
    }  # fmt: skip
    assert progress_of(event) == progress_of(view) == expected
    assert (event.operation_id, view.id, view.requested_by_email) == (
        ROW.id, ROW.id, "ada@example.com"
    )  # fmt: skip


def test_what_the_event_adds_is_kept() -> None:
    item = BulkItemOutcome(campaign_id=uuid4(), result="succeeded", code="ok", message="")
    event = BulkOperationProgress.of_operation(ROW, operation_id=ROW.id, items=[item])
    assert event.items == [item]
    assert BulkOperationProgress.of_operation(ROW, operation_id=ROW.id).items == []
