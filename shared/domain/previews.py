"""Test sends (docs/campaigns.md, "Test send"): one send step rendered for one contact exactly
as the sender would render it, and sent to the campaign account's own Saved Messages so a
person sees it as it will arrive. What decides whether one may go, and what it says.

A test send is no message to the contact: it does not touch executions or statistics. It is
still a message from the account, so it needs a live account (active or warming, not cooling
down) and is paced modestly: at most TEST_SENDS_PER_WINDOW per account in TEST_SEND_WINDOW.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.flows import Flow, NodeType
from shared.domain.interpreter import rendered

TEST_SENDS_PER_WINDOW = 5
TEST_SEND_WINDOW = timedelta(minutes=1)
SENDING_HEALTH = frozenset({"active", "warming"})


class RefusalCode(StrEnum):
    """Why a test send does not go (each is a problem code of the HTTP endpoint)."""

    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    PERMISSION_DENIED = "permission_denied"
    FLOW_INVALID = "flow_invalid"
    NODE_NOT_FOUND = "node_not_found"
    NOT_A_SEND_STEP = "not_a_send_step"
    CONTACT_NOT_FOUND = "contact_not_found"
    NO_ACCOUNT = "campaign_has_no_account"
    ACCOUNT_UNAVAILABLE = "account_unavailable"
    ATTACHMENT_NOT_FOUND = "attachment_not_found"
    MESSAGE_TOO_LONG = "message_too_long"
    RATE_LIMITED = "test_send_rate_limited"


@dataclass(frozen=True)
class Refusal:
    code: RefusalCode
    detail: str
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Preview:
    """The step as it will arrive for that contact: its text (a caption with an attachment)."""

    node_id: str
    text: str
    attachment_id: str | None


def preview(
    flow: Flow | None, node_id: str, contact_key: str, values: Mapping[str, object]
) -> Preview | Refusal:
    """Render the send step `node_id` for the contact whose execution key is `contact_key`
    (its id: the key its executions render with) and whose values are `values`."""
    if flow is None:
        return Refusal(RefusalCode.FLOW_INVALID, "the campaign's flow is not valid yet")
    node = flow.nodes.get(node_id)
    if node is None:
        return Refusal(RefusalCode.NODE_NOT_FOUND, f"the flow has no node {node_id!r}")
    if node.type is not NodeType.SEND_MESSAGE:
        return Refusal(
            RefusalCode.NOT_A_SEND_STEP,
            f"node {node_id!r} is a {node.type.value} step, not a send_message step",
        )
    text, too_long = rendered(node, values, contact_key)
    if too_long is not None:
        return Refusal(RefusalCode.MESSAGE_TOO_LONG, too_long)
    return Preview(node_id, text, node.attachment_id)


def account_refusal(
    health: str | None, deleted: bool, cooldown_until: datetime | None, now: datetime
) -> Refusal | None:
    """None if the campaign's account may send a test now (`health` None: no account)."""
    if health is None:
        return Refusal(RefusalCode.NO_ACCOUNT, "the campaign has no Telegram account")
    if deleted:
        return Refusal(RefusalCode.ACCOUNT_UNAVAILABLE, "the campaign's account was removed")
    if health not in SENDING_HEALTH:
        return Refusal(
            RefusalCode.ACCOUNT_UNAVAILABLE,
            f"the campaign's account is {health}: it must be connected and healthy",
        )
    if cooldown_until is not None and cooldown_until > now:
        wait = math.ceil((cooldown_until - now).total_seconds())
        return Refusal(
            RefusalCode.ACCOUNT_UNAVAILABLE,
            f"the campaign's account is cooling down until {cooldown_until.isoformat()}",
            wait,
        )
    return None


def rate_refusal(recent: Sequence[datetime], now: datetime) -> Refusal | None:
    """None if another test send from the account may go now; `recent` are the times of its
    test sends (any that fall within the window count)."""
    within = sorted(t for t in recent if now - t < TEST_SEND_WINDOW)
    if len(within) < TEST_SENDS_PER_WINDOW:
        return None
    # The oldest that must leave the window before one more fits.
    frees_at = within[len(within) - TEST_SENDS_PER_WINDOW] + TEST_SEND_WINDOW
    wait = max(1, math.ceil((frees_at - now).total_seconds()))
    return Refusal(
        RefusalCode.RATE_LIMITED,
        f"at most {TEST_SENDS_PER_WINDOW} test sends per account per "
        f"{int(TEST_SEND_WINDOW.total_seconds())} s; try again in {wait} s",
        wait,
    )
