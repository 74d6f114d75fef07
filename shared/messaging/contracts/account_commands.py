"""dripline.account.commands: what may be asked of the sender about a Telegram account, keyed
by account id. Each command is answered on dripline.account.events under its correlation id."""

from __future__ import annotations

from uuid import UUID

from shared.messaging.contracts.base import EXAMPLE_ACCOUNT, Contract, MessageType, Payload
from shared.messaging.topics import Topic


class AccountHealthCheck(Payload):
    """Probe the account now and record what is found (TELEGRAM.md); answered by
    account.checked. The actor must see the account: its personal owner, or a member of its
    organization."""

    telegram_account_id: UUID


CHECK_HEALTH = Contract(
    Topic.ACCOUNT_COMMANDS,
    MessageType.ACCOUNT_CHECK_HEALTH,
    1,
    AccountHealthCheck,
    True,
    {"telegram_account_id": EXAMPLE_ACCOUNT},
)
CONTRACTS: tuple[Contract[AccountHealthCheck], ...] = (CHECK_HEALTH,)
