"""A local MTProto server, for tests only, that an unmodified ``telethon.TelegramClient`` talks to.

Why: the Telethon adapter has to be tested against what Telethon really does — the exception
classes it builds from ``rpc_error``, its retries of 500s, its flood-wait bookkeeping, and how
its MessageBox applies (or refuses) updates by pts. A mocked client shows none of that, so this
server speaks the real wire protocol and the whole client stack runs as in production:
TcpFull framing, MTProto 2.0 encryption, the sender, update handling and error mapping.

What it simplifies, on purpose:

- No auth-key (Diffie-Hellman) exchange: the server creates each 256-byte auth key itself and
  hands it out in a StringSession (`FakeTelegram.session_string`). A key it does not know gets
  the transport error -404, as from Telegram; an unencrypted message closes the connection.
- One data centre (2), TcpFull framing only (TelegramClient's default connection), no checks
  of server salt or seq_no, and the server never re-sends: it ignores acknowledgements.
- A handful of RPCs (`FakeTelegram._handlers` in server.py); any other answers
  400 METHOD_NOT_IMPLEMENTED_IN_FAKE, so a missing one is obvious.
- Private chats only, one access_hash per user (Telegram has one per viewer), and only the
  account's pts: qts and seq stay 0 (``seq = 0`` means "does not matter" in Telegram's docs).

Update shapes (each one bumps the account's pts by one, and updates.GetDifference replays
everything after the client's pts, so a client that missed some catches up like with Telegram):

- messages.SendMessage answers UpdateShortSentMessage, as Telegram does for a plain text message
  in a private chat; the account's other live connections get the new message pushed as
  ``Updates([UpdateNewMessage(out=True)])``.
- push_reply pushes ``Updates([UpdateNewMessage(Message(out=False, peer_id=PeerUser(sender)))],
  users=[sender])``, with no from_id, like Telegram for incoming private messages since layer 119.
- push_read pushes ``Updates([UpdateReadHistoryOutbox(PeerUser(peer), max_id)], users=[peer])``.

Updates are pushed only to connections that made a call not wrapped in InvokeWithoutUpdates,
like Telegram, which starts sending updates after the first such call.

mtproto.py is the wire protocol of one connection; server.py is the fake Telegram behind it.
"""

from tests.fake_telegram.server import Call, FakeTelegram, SentMessage

__all__ = ["Call", "FakeTelegram", "SentMessage"]
