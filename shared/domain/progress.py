"""How far a bulk operation (over campaigns) or a bulk action (over contacts) has got.

One shape for both kinds, in their Kafka progress events and in their API views alike, so a
consumer and an HTTP client read the same five figures under the same names."""

from __future__ import annotations

from typing import Any, Protocol, Self

from pydantic import BaseModel, Field

from shared.domain.bulk_operations import BulkAction, BulkStatus


class Progress(BaseModel):
    """The counts of a bulk run: processed = success + skipped + error, never above total."""

    total: int = Field(description="Items the run selected.")
    processed: int = Field(description="Items done so far: succeeded, skipped or in error.")
    success_count: int = Field(description="Items the action was applied to.")
    skipped_count: int = Field(description="Items left as they were, with a reason.")
    error_count: int = Field(description="Items that failed, with a reason.")


class OperationFigures(Protocol):
    """What a bulk operation's progress is read from: shared/db/rows.py's BulkOperationRow."""

    @property
    def action(self) -> BulkAction: ...
    @property
    def status(self) -> BulkStatus: ...
    @property
    def total(self) -> int: ...
    @property
    def processed(self) -> int: ...
    @property
    def success_count(self) -> int: ...
    @property
    def skipped_count(self) -> int: ...
    @property
    def error_count(self) -> int: ...
    @property
    def cancelled_executions(self) -> int: ...
    @property
    def error_message(self) -> str | None: ...


class OperationProgress(Progress):
    """Where a bulk operation over campaigns stands. Its progress event (the contract's
    BulkOperationProgress) and its API view (services/api/bulk_operations.BulkOperation) are
    this with what each adds, and both are built by `of_operation` from the operation's
    row."""

    action: BulkAction
    status: BulkStatus
    cancelled_executions: int
    error_message: str | None = None

    @classmethod
    def of_operation(cls, operation: OperationFigures, **more: Any) -> Self:
        """The progress of this operation, with the fields the subclass adds (`more`)."""
        return cls(
            action=operation.action,
            status=operation.status,
            total=operation.total,
            processed=operation.processed,
            success_count=operation.success_count,
            skipped_count=operation.skipped_count,
            error_count=operation.error_count,
            cancelled_executions=operation.cancelled_executions,
            error_message=operation.error_message,
            **more,
        )
