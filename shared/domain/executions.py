"""An execution's status (one contact's run through a campaign's flow) and the sets of statuses
the services ask about. The same sets reach SQL through shared/db/sql.py's `{{NAME}}`
placeholders, so a query and the Python beside it cannot disagree about what "unfinished" means.
"""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    PENDING = "pending"  # due at next_execution_at, not yet claimed
    RUNNING = "running"  # allowed by the schema; the dispatcher leases instead of setting it
    WAITING = "waiting"  # waiting for a reply or a delay, due again at next_execution_at
    PAUSED = "paused"  # its campaign is paused
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Still going somewhere: a stop, a delete or a dead account cancels these.
UNFINISHED = frozenset(
    {
        ExecutionStatus.PENDING,
        ExecutionStatus.RUNNING,
        ExecutionStatus.WAITING,
        ExecutionStatus.PAUSED,
    }
)
FINISHED = frozenset(ExecutionStatus) - UNFINISHED
# Moving now: what a pause stops and an account still in use has (a paused one is not moving).
IN_MOTION = UNFINISHED - {ExecutionStatus.PAUSED}
# Between steps: what the dispatcher claims when due (the partial index executions_due_idx
# covers exactly these), and what a step or a Telegram answer may move an execution from.
BETWEEN_STEPS = frozenset({ExecutionStatus.PENDING, ExecutionStatus.WAITING})
