"""A local MTProto server, for tests only, that an unmodified ``telethon.TelegramClient`` talks to.

Why: the Telethon adapter has to be tested against what Telethon really does — the exception
classes it builds from ``rpc_error``, its retries of 500s, its flood-wait bookkeeping, and how
its MessageBox applies (or refuses) updates by pts. A mocked client shows none of that, so this
server speaks the real wire protocol and the whole client stack runs as in production:
TcpFull framing, MTProto 2.0 encryption, the sender, update handling and error mapping.

What it simplifies, on purpose:

- Two ways to an auth key: `FakeTelegram.session_string` creates a logged-in key itself and
  hands it out in a StringSession; or a client with an empty session runs the real exchange
  (handshake.py: req_pq_multi, req_DH_params, set_client_DH_params) against the server's test
  RSA key, which `fake_rsa_key()` registers with this process's Telethon. Such a key belongs to
  nobody until a login on it completes: auth.sendCode (the code is read with `last_code`),
  auth.signIn, and for an account with a password SESSION_PASSWORD_NEEDED, account.getPassword
  and auth.checkPassword with real SRP (srp.py). Until then Telegram's 401
  AUTH_KEY_UNREGISTERED answers everything but help.getConfig and the login calls. A key the
  server does not know gets the transport error -404, as from Telegram.
- Scripted account states: `revoke` (the account's keys so far: 401), `ban` (every key, and
  PHONE_NUMBER_BANNED at login), `freeze` (help.getAppConfig's freeze_* fields, sends answer
  FROZEN_METHOD_INVALID), `spambot_says` (@SpamBot's answer to /start: SPAMBOT_FREE or
  `spambot_limited(until)`), `expire_codes`.
- Scripted faults: `fail` (an rpc_error), `drop` (close the connection before a call is
  handled, or after it took effect so its answer is lost), `delay` (answer late while the
  connection serves others; optionally drop then), `drop_connections` (now).
- What clients said and where from: `connected` (each connection that used its auth key, with
  the client address the server saw, a proxy's when it came through one) and `inits` (each
  initConnection: device model, system and app versions, languages).
- One data centre (2), TcpFull framing only (TelegramClient's default connection), no checks
  of server salt or seq_no, and the server never re-sends: it ignores acknowledgements.
- A handful of RPCs (`FakeTelegram._handlers` in server.py); any other answers
  400 METHOD_NOT_IMPLEMENTED_IN_FAKE, so a missing one is obvious.
- Private chats only, one access_hash per user (Telegram has one per viewer), and only the
  account's pts: qts and seq stay 0 (``seq = 0`` means "does not matter" in Telegram's docs).

Update shapes (each one bumps the account's pts by one, and updates.GetDifference replays
everything after the client's pts, so a client that missed some catches up like with Telegram):

- messages.SendMessage answers UpdateShortSentMessage, as Telegram does for a plain text message
  in a private chat, or, after ``answer_sends_with(account, "updates")``, a full
  ``Updates([UpdateMessageID(id, random_id), UpdateNewMessage(out=True)])`` as Telegram answers
  some text sends; the account's other live connections get the new message pushed as
  ``Updates([UpdateNewMessage(out=True)])``.
- contacts.resolveUsername of a name given to `add_channel` (a channel, or a supergroup with
  ``group=True``) answers ``ResolvedPeer(PeerChannel, chats=[Channel])``: a username that is a
  group or channel, not a person.
- push_reply pushes ``Updates([UpdateNewMessage(Message(out=False, peer_id=PeerUser(sender)))],
  users=[sender])``, with no from_id, like Telegram for incoming private messages since layer 119.
- messages.SendMedia (a photo or document uploaded with upload.saveFilePart or
  saveBigFilePart, or named again by InputPhoto / InputDocument with its file reference)
  answers ``Updates([UpdateMessageID, UpdateNewMessage(media)])``, as Telegram does for media;
  `sent` records the media's bytes, type and name. A message to InputPeerSelf is in the
  account's Saved Messages (`saved_messages`).
- messages.ReadHistory answers messages.AffectedMessages and is recorded in `read`.
- push_read pushes ``Updates([UpdateReadHistoryOutbox(PeerUser(peer), max_id)], users=[peer])``.

Updates are pushed only to connections that made a call not wrapped in InvokeWithoutUpdates,
like Telegram, which starts sending updates after the first such call.

mtproto.py is the wire protocol of one connection; server.py is the fake Telegram behind it.
"""

from dripline.fake_telegram.server import (
    SPAMBOT_FREE,
    SPAMBOT_ID,
    Call,
    Connected,
    FakeTelegram,
    Init,
    ReadReceipt,
    SentMedia,
    SentMessage,
    spambot_limited,
)

__all__ = [
    "SPAMBOT_FREE",
    "SPAMBOT_ID",
    "Call",
    "Connected",
    "FakeTelegram",
    "Init",
    "ReadReceipt",
    "SentMedia",
    "SentMessage",
    "spambot_limited",
]
