"""How far a bulk operation (over campaigns) or a bulk action (over contacts) has got.

One shape for both kinds, in their Kafka progress events and in their API views alike, so a
consumer and an HTTP client read the same five figures under the same names."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Progress(BaseModel):
    """The counts of a bulk run: processed = success + skipped + error, never above total."""

    total: int = Field(description="Items the run selected.")
    processed: int = Field(description="Items done so far: succeeded, skipped or in error.")
    success_count: int = Field(description="Items the action was applied to.")
    skipped_count: int = Field(description="Items left as they were, with a reason.")
    error_count: int = Field(description="Items that failed, with a reason.")
