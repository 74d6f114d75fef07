"""Attachments: a photo or document uploaded once and sent with a send step (docs/flows.md).

Which uploads are accepted is decided here, from the declared content type and the bytes
themselves (a photo must start as its type does), so a lying Content-Type cannot turn a document
into a photo Telegram would refuse."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class AttachmentKind(StrEnum):
    PHOTO = "photo"  # sent as a compressed photo, shown inline
    DOCUMENT = "document"  # sent as a file, with its name


# Content type -> kind, and for photos the bytes they start with.
PHOTO_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/zip",
        "image/gif",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # Telegram's limit for a photo


@dataclass(frozen=True)
class Accepted:
    kind: AttachmentKind
    content_type: str
    sha256: str


@dataclass(frozen=True)
class Refused:
    status: int
    code: str  # attachment_empty | attachment_too_large | attachment_type_not_allowed | ...
    detail: str


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def accept(content_type: str | None, data: bytes, max_bytes: int) -> Accepted | Refused:
    """Whether an upload may be stored, and as what."""
    declared = base_type(content_type)
    if not data:
        return Refused(422, "attachment_empty", "the upload has no bytes")
    if len(data) > max_bytes:
        return Refused(
            413, "attachment_too_large", f"an attachment may be at most {max_bytes} bytes"
        )
    digest = hashlib.sha256(data).hexdigest()
    if declared in PHOTO_TYPES:
        if not data.startswith(PHOTO_TYPES[declared]):
            return Refused(
                422, "attachment_content_mismatch", f"the bytes are not a {declared} image"
            )
        if len(data) > PHOTO_MAX_BYTES:
            return Refused(
                413,
                "attachment_too_large",
                f"a photo may be at most {PHOTO_MAX_BYTES} bytes (send it as a document)",
            )
        return Accepted(AttachmentKind.PHOTO, declared, digest)
    if declared in DOCUMENT_TYPES:
        return Accepted(AttachmentKind.DOCUMENT, declared, digest)
    allowed = ", ".join(sorted({*PHOTO_TYPES, *DOCUMENT_TYPES}))
    return Refused(
        415,
        "attachment_type_not_allowed",
        f"{declared or 'no content type'} is not allowed; allowed: {allowed}",
    )


def clean_filename(raw: str | None, kind: AttachmentKind) -> str:
    """A file name safe to show and send: no path, no control characters, at most 128."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c != "\x00").strip()[:128]
    return name or ("photo.jpg" if kind is AttachmentKind.PHOTO else "document")
