"""Share cards for app messages stored before cards existed (or before the card's reading last
changed): each stored letter is read again exactly as ingest reads it, and a row is written only
when what it stores differs, so running this twice changes nothing the second time.

Batched by primary key (a batch: one read, at most one bulk update of its messages and one of
the sessions whose list preview is one of them), so it runs alongside sync and the inbox on a
million-letter database. `manage.py reparse_app_messages` drives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from inbox.models import Message, Session
from inbox.payloads import Letter, clean_text, parse_app_xml, parse_item
from inbox.sync import preview_of

REPARSED_FIELDS = ("title", "app_type", "image_meta", "parse_error")
TITLE_LENGTH = Message._meta.get_field("title").max_length


@dataclass(frozen=True, slots=True)
class Batch:
    read: int
    changed: int
    previews: int


def app_message_count() -> int:
    return Message.objects.filter(msg_type=Message.Type.APP).count()


def reparse_app_messages(batch_size: int = 500, window: int = 20_000) -> Iterator[Batch]:
    """Read every app message again, a batch at a time, yielding what each batch changed.

    Each read looks at most `window` primary keys ahead: app messages are a few percent of the
    letters, and "the next 500 app messages" alone made PostgreSQL sort every later row (a
    second a batch at a million letters). Letters stored after the start were read by the
    new code already."""
    last_pk = 0
    top = Message.objects.aggregate(top=Max("pk"))["top"] or 0
    while last_pk < top:
        messages = list(
            Message.objects.filter(
                msg_type=Message.Type.APP, pk__gt=last_pk, pk__lte=last_pk + window
            )
            .order_by("pk")
            .only("pk", "session_id", "created_at", "content", "raw", *REPARSED_FIELDS)[:batch_size]
        )
        last_pk = messages[-1].pk if len(messages) == batch_size else last_pk + window
        if messages:
            yield refresh_messages(messages)


def refresh_messages(messages: list[Message]) -> Batch:
    """Store what reading these app messages again gives, for those where it differs (they
    must carry the fields reparse reads: `REPARSED_FIELDS`, content, raw, session, created_at)."""
    changed = [message for message in messages if _refresh(message)]
    previews = 0
    if changed:
        with transaction.atomic():
            now = timezone.now()
            for message in changed:
                message.updated_at = now
            Message.objects.bulk_update(changed, [*REPARSED_FIELDS, "updated_at"])
            previews = _refresh_previews(changed)
    return Batch(read=len(messages), changed=len(changed), previews=previews)


def reparsed_values(message: Message) -> dict[str, Any]:
    """The stored fields ingest would give this letter now. From the upstream item when the row
    has it (the same call as sync, so the other fields' notes are kept as they were), else from
    the content alone."""
    if isinstance(message.raw, dict):
        letter = parse_item(message.raw, received_at=message.created_at)
        if isinstance(letter, Letter) and letter.msg_type == Message.Type.APP:
            return {
                "title": letter.title,
                "app_type": letter.app_type,
                "image_meta": letter.image_meta,
                "parse_error": letter.parse_error,
            }
    if not message.content:
        return {"title": "", "app_type": None, "image_meta": None, "parse_error": ""}
    try:
        card, app_type, notes = parse_app_xml(clean_text(message.content))
    except ValueError as exc:
        error = f"app message XML: {exc}"
        return {"title": "", "app_type": None, "image_meta": None, "parse_error": error}
    return {
        "title": card.title[:TITLE_LENGTH],
        "app_type": app_type,
        "image_meta": {"card": card.to_dict()},
        "parse_error": "; ".join(f"app message XML: {note}" for note in notes),
    }


def _refresh(message: Message) -> bool:
    """Set the message's reparsed fields; True when any of them changed."""
    values = reparsed_values(message)
    changed = any(getattr(message, name) != value for name, value in values.items())
    for name, value in values.items():
        setattr(message, name, value)
    return changed


def _refresh_previews(messages: list[Message]) -> int:
    """The list preview of each session whose latest letter is one of `messages` (it shows the
    title, which the card may have changed)."""
    by_session = {
        message.session_id: message
        for message in sorted(messages, key=lambda message: message.created_at)
    }
    sessions = list(
        Session.objects.filter(pk__in=by_session, last_message_type=Message.Type.APP).only(
            "pk", "last_message_at", "last_message_preview"
        )
    )
    stale = []
    for session in sessions:
        message = by_session[session.pk]
        preview = preview_of(Message.Type.APP, "", message.title)
        is_latest = session.last_message_at == message.created_at
        if is_latest and session.last_message_preview != preview:
            session.last_message_preview = preview
            stale.append(session)
    if stale:
        Session.objects.bulk_update(stale, ["last_message_preview"])
    return len(stale)
