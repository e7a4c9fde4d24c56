"""A thread's messages as HTML, built in Python: one function per message instead of a template
with dozens of tag calls, because a thread page renders fifty of them on every open, page and
poll. The markup is the same as the templates made before.

Everything here escapes what it is given (letters' text through inbox.text) and marks the result
safe once. `manage.py benchmark_render` measures it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from html import escape

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import DateFormat, re_escaped, re_formatchars
from django.utils.formats import date_format, get_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from inbox.models import Message
from inbox.pictures.services import NO_PICTURES, LetterPictures, pictures_of
from inbox.share_cards import LINK, LIVE, MINI_PROGRAM, VIDEO, ShareCard
from inbox.team import mentions
from inbox.text import linkify, person, pretty_json, system_text, type_label

# --- times -----------------------------------------------------------------------------------


def minutes_ago(moment: datetime, now: datetime) -> int | None:
    """Whole minutes since `moment` when it was within the last hour, else None."""
    age = now - moment
    if timedelta(0) <= age < timedelta(hours=1):
        return int(age.total_seconds() // 60)
    if timedelta(minutes=-5) < age < timedelta(0):  # a clock a little ahead of ours
        return 0
    return None


def relative(minutes: int) -> str:
    if minutes == 0:
        return _("just now")
    # The same words as inbox.js uses when it refreshes the time ("min" has no plural).
    return _("%(count)d min ago") % {"count": minutes}


def _time_element(moment: datetime, reader: Reader, *, live: bool = True) -> str:
    """A bubble's <time>: relative within the last hour (and, when `live`, marked for inbox.js
    to keep it current), else the local clock time; the full date and time as its title."""
    local = moment.astimezone(reader.zone)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    minutes = minutes_ago(moment, reader.now)
    if minutes is None:
        shown = clock
    elif minutes == 0:
        shown = reader.words["just_now"]
    else:
        shown = reader.words["minutes_ago"] % {"count": minutes}
    title = escape(reader.full_time(local))
    live_attributes = f' data-relative data-clock="{clock}"' if live and minutes is not None else ""
    return f'<time datetime="{moment.isoformat()}" title="{title}"{live_attributes}>{shown}</time>'


class CompiledDateFormat:
    """A Django date format string split into its parts once, for formatting many datetimes:
    django.utils.dateformat splits the string again on every call, a third of a bubble's cost."""

    def __init__(self, format_string: str) -> None:
        self.parts: list[tuple[bool, str]] = []
        for index, piece in enumerate(re_formatchars.split(str(format_string))):
            if index % 2:
                self.parts.append((True, piece))
            elif piece:
                self.parts.append((False, re_escaped.sub(r"\1", piece)))

    def __call__(self, value: datetime) -> str:
        formatter = DateFormat(value)
        return "".join(
            str(getattr(formatter, piece)()) if is_code else piece for is_code, piece in self.parts
        )


# --- messages --------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _compiled_format(format_string: str) -> CompiledDateFormat:
    return CompiledDateFormat(format_string)


# Label lines name the label: "李四 added the label 退款" (the word keys are the activities).
LABEL_ACTIVITIES = (Message.Activity.LABELED, Message.Activity.UNLABELED)


@lru_cache(maxsize=16)
def _words(language: str | None) -> dict[str, str]:
    """The fixed words of a message, translated once per language (and escaped for HTML)."""
    words = {
        "internal_note": _("Internal note"),
        "system": _("System"),
        "system_assigned": _("System assigned to %(name)s"),
        "activity": _("%(actor)s %(action)s"),
        "labeled": _("%(actor)s added the label %(label)s"),
        "unlabeled": _("%(actor)s removed the label %(label)s"),
        "just_now": _("just now"),
        # The same words as inbox.js uses when it refreshes the time ("min" has no plural).
        "minutes_ago": _("%(count)d min ago"),
        "sent_from_inbox": _("Image sent from the inbox"),
        "untitled": _("Untitled"),
        "shared_video": _("shared a Channels video"),
        "shared_live": _("shared a Channels live"),
        "shared_mini_program": _("shared a mini program"),
        "shared_link": _("shared a link"),
        "live_now": _("Live now"),
        "live_ended": _("Live ended"),
        "live_status_note": _("As it was when shared"),
        "app_message": _("App message"),
        "unreadable": _("Part of this message could not be read."),
        "show_raw": _("Show the raw payload"),
        "sending": _("Sending…"),
        "not_sent": _("Not sent"),
        "sent": _("Sent"),
        "confirm_resend": _(
            "The upstream may have delivered this letter already. Send it again anyway?"
        ),
        "send_again": _("Send again"),
        "retry": _("Retry"),
        "image_alt": _("Image sent in the letter"),
        "thumbnail_size": _("Thumbnail size in pixels"),
        "loading_image": _("Loading the image…"),
        "image_failed": _("The image could not be loaded:"),
        "image_stalled": _("Still waiting for the image. Is the worker running?"),
        "try_again": _("Try again"),
        "load_image": _("Load image"),
        "open_picture": _("Open the picture"),
        "loading_preview": _("Loading the preview…"),
        "preview_failed": _("No preview:"),
        "loading_cover": _("Loading the cover…"),
        "cover_failed": _("No cover:"),
    }
    return {key: escape(value) for key, value in words.items()}


@dataclass(frozen=True)
class Reader:
    """Who a thread is rendered for, and when: looked up once per page, not once per message
    (the user is a lazy object, the language and time zone are thread-locals)."""

    superuser: bool
    csrf_input: str
    now: datetime
    zone: tzinfo
    words: dict[str, str]
    full_time: CompiledDateFormat

    @classmethod
    def of(cls, user, csrf_token: str = "") -> Reader:
        if csrf_token and csrf_token != "NOTPROVIDED":
            csrf_input = (
                f'<input type="hidden" name="csrfmiddlewaretoken" value="{escape(csrf_token)}">'
            )
        else:
            csrf_input = ""
        return cls(
            superuser=bool(getattr(user, "is_superuser", False)),
            csrf_input=csrf_input,
            now=timezone.now(),
            zone=timezone.get_current_timezone(),
            words=_words(get_language()),
            full_time=_compiled_format(get_format("DATETIME_FORMAT")),
        )


def render_message(
    message: Message, reader: Reader, mentioned: set[str] | None = None
) -> SafeString:
    """One message of a thread, as `reader` sees it; a note highlights the user names it
    `mentioned` (looked up when not given)."""
    words = reader.words
    pk = message.pk
    if message.kind == Message.Kind.ACTIVITY and _assigned_automatically(message):
        line = words["system_assigned"] % {"name": escape(person(message.activity_user))}
        return mark_safe(
            f'<div id="message-{pk}" class="activity-line"><span>{line}</span>'
            f"{_time_element(message.created_at, reader)}</div>"
        )
    if message.kind == Message.Kind.ACTIVITY:
        line = words["activity"] % {
            "actor": escape(person(message.author)) or words["system"],
            "action": escape(str(message.get_activity_display())),
        }
        if message.activity_detail and message.activity in LABEL_ACTIVITIES:
            # "李四 added the label 退款": the label's name as it was then.
            line = words[message.activity] % {
                "actor": escape(person(message.author)) or words["system"],
                "label": f'<b class="activity-label">{escape(message.activity_detail)}</b>',
            }
        target = f": {escape(person(message.activity_user))}" if message.activity_user else ""
        return mark_safe(
            f'<div id="message-{pk}" class="activity-line"><span>{line}{target}</span>'
            f"{_time_element(message.created_at, reader)}</div>"
        )
    if message.kind == Message.Kind.NOTE:
        return mark_safe(
            f'<article id="message-{pk}" class="note"><header class="note-head">'
            f'<span class="note-label">{words["internal_note"]}</span> '
            f'<span class="note-author">{escape(person(message.author))}</span> '
            f"{_time_element(message.created_at, reader)}</header>"
            f'<div class="note-body">{_note_body(message, mentioned)}</div></article>'
        )
    if message.msg_type in (Message.Type.SYSTEM, Message.Type.RECALL):
        return mark_safe(
            f'<div id="message-{pk}" class="system-line">'
            f"<span>{escape(system_text(message))}</span> "
            f"{_time_element(message.created_at, reader, live=False)}</div>"
        )
    direction = "message-out" if message.is_sender else "message-in"
    delivery = escape(message.delivery)
    parts = [
        f'<article id="message-{pk}" class="message {direction} delivery-{delivery}">'
        f'<div class="bubble bubble-type-{int(message.msg_type)}">',
        _body(message, reader),
    ]
    if message.parse_error:
        parts.append(f'<div class="parse-notice" role="note"><span>⚠ {words["unreadable"]}</span>')
        if reader.superuser:
            parts.append(
                f'<details class="raw-payload"><summary>{words["show_raw"]}</summary>'
                f'<p class="parse-error">{escape(message.parse_error)}</p>'
                f"<pre>{escape(pretty_json(message.raw))}</pre></details>"
            )
        parts.append("</div>")
    parts.append('</div><footer class="message-meta">')
    if message.is_sender and message.author:
        parts.append(f'<span class="message-author">{escape(person(message.author))}</span> ')
    parts.append(_time_element(message.created_at, reader))
    parts.append(_delivery(message, reader))
    parts.append("</article>")
    return mark_safe("".join(parts))


def render_messages(messages, reader: Reader) -> SafeString:
    """A run of messages in thread order, with a day separator before the first message and
    wherever the day changes (as `{% ifchanged %}` did in the template this replaces)."""
    parts = []
    previous_day = None
    messages = list(messages)
    mentioned = mentions.mentioned_names([m.pk for m in messages if _may_mention(m)])
    for message in messages:
        local_day = message.created_at.astimezone(reader.zone).date()
        if local_day != previous_day:
            previous_day = local_day
            parts.append(
                f'<div class="day-sep" data-day="{local_day:%Y%m%d}">'
                f"<span>{escape(day_label(message.created_at))}</span></div>"
            )
        parts.append(render_message(message, reader, mentioned.get(message.pk, set())))
    return mark_safe("".join(parts))


def _assigned_automatically(line: Message) -> bool:
    """An assignment without an author was auto-assignment's (inbox.team.assignment)."""
    return (
        line.activity == Message.Activity.ASSIGNED
        and line.author_id is None
        and line.activity_user is not None
    )


def _may_mention(message: Message) -> bool:
    return message.kind == Message.Kind.NOTE and "@" in message.content


def _note_body(note: Message, mentioned: set[str] | None) -> SafeString:
    """A note's text, its @mentions of members highlighted (inbox.team.mentions)."""
    if not _may_mention(note):
        return linkify(note.content)
    if mentioned is None:
        mentioned = mentions.mentioned_names([note.pk]).get(note.pk, set())
    return mentions.highlight(note.content, mentioned)


def day_label(moment: datetime) -> str:
    """A thread's day separator: "Today", "Yesterday", the weekday within a week, else the
    date."""
    local = timezone.localtime(moment)
    days = (timezone.localtime().date() - local.date()).days
    if days == 0:
        return _("Today")
    if days == 1:
        return _("Yesterday")
    if 1 < days < 7:
        return f"{date_format(local, 'l')} · {date_format(local, 'DATE_FORMAT')}"
    return date_format(local, "DATE_FORMAT")


def _body(message: Message, reader: Reader) -> str:
    words = reader.words
    if message.msg_type == Message.Type.TEXT:
        return f'<div class="text">{linkify(message.content)}</div>'
    if message.msg_type == Message.Type.IMAGE and message.attachment:
        url = escape(message.attachment.url)
        return (
            f'<a class="reply-image" href="{url}" target="_blank" rel="noopener noreferrer">'
            f'<img src="{url}" alt="{words["sent_from_inbox"]}"></a>'
        )
    if message.msg_type == Message.Type.IMAGE:
        return render_image_card(message, reader)
    if message.msg_type == Message.Type.APP:
        return render_share_card(message, reader)
    return f'<div class="text text-muted">[{escape(type_label(message.msg_type))}]</div>'


def _delivery(message: Message, reader: Reader) -> str:
    """The footer's delivery mark, and for a failed reply its reason and the Retry button."""
    words = reader.words
    if message.delivery == Message.Delivery.SENDING:
        return f' <span class="delivery delivery-sending">{words["sending"]}</span></footer>'
    if message.delivery == Message.Delivery.SENT:
        return f' <span class="delivery delivery-sent" title="{words["sent"]}">✓</span></footer>'
    if message.delivery != Message.Delivery.FAILED:
        return "</footer>"
    error = escape(message.delivery_error)
    parts = [
        f' <span class="delivery delivery-failed" title="{error}">{words["not_sent"]}</span>'
        "</footer>"
    ]
    if message.delivery_error:
        parts.append(f'<p class="delivery-error">{error}</p>')
    if message.client_token:
        url = reverse("inbox:retry", args=[message.pk])
        confirm = f' hx-confirm="{words["confirm_resend"]}"' if message.maybe_delivered else ""
        label = words["send_again"] if message.maybe_delivered else words["retry"]
        parts.append(
            f'<form class="retry-form" method="post" action="{url}" hx-post="{url}" '
            f'hx-target="#message-{message.pk}" hx-swap="outerHTML"{confirm}>'
            f'{reader.csrf_input}<button type="submit" '
            f'class="button button-small retry-button">↻ {label}</button></form>'
        )
    return "".join(parts)


def card_width(image) -> int:
    """The image card's width in CSS pixels: landscape pictures 240 wide, portrait ones as wide
    as their shape allows within 240 high, never narrower than 120."""
    ratio = image.aspect_ratio if image else 1.0
    return max(120, min(240, round(240 * ratio)))


def render_image_card(
    message: Message,
    reader: Reader,
    *,
    waiting: bool = False,
    gave_up: bool = False,
    polls: int | str = "",
) -> SafeString:
    """An image letter's card: its stored thumbnail (queued when the thread was opened; a
    placeholder until it arrives and the thread's poll redraws the card), and "Load image" for
    the full-size picture; while `waiting` for that, it asks the image view again every second
    until the picture is there or it `gave_up`. A stored picture opens in the lightbox
    (static/inbox/pictures.js) or, without JavaScript, by itself. Only our own copies are
    linked: the upstream's file URL never reaches the page. `message.pictures` is set by
    inbox.pictures.services.show_pictures."""
    words = reader.words
    image = message.image
    pk = message.pk
    pictures = pictures_of(message)
    full = pictures.full
    shown = pictures.thumb or full
    poll = ""
    if waiting and not full and not gave_up:
        url = reverse("inbox:image", args=[pk])
        poll = (
            f' hx-get="{url}?polls={escape(str(polls))}" hx-trigger="load delay:1s" '
            'hx-swap="outerHTML"'
        )
    width = (image.thumb_width if image else None) or 1
    height = (image.thumb_height if image else None) or 1
    lightbox = ""
    if shown:
        lightbox = f' data-picture="{escape(shown.url)}"'
        if full:
            lightbox += f' data-full="{escape(full.url)}"'
    parts = [
        f'<div id="image-{pk}" class="image-card" data-width="{card_width(image)}"'
        f"{lightbox}{poll}>"
        f'<div class="image-frame" data-aspect-ratio="{width} / {height}">'
    ]
    if shown:
        parts.append(
            f'<a class="picture-open" href="{escape((full or shown).url)}" target="_blank" '
            f'rel="noopener" title="{words["open_picture"]}"><img src="{escape(shown.url)}" '
            f'alt="{words["image_alt"]}" loading="lazy"></a>'
        )
    elif pictures.thumb_pending:
        parts.append(
            '<span class="image-placeholder is-loading" role="img" '
            f'aria-label="{words["loading_preview"]}">▧</span>'
        )
    else:
        parts.append('<span class="image-placeholder" aria-hidden="true">▧</span>')
    parts.append('</div><div class="image-info">')
    if image is not None:
        parts.append(_image_sizes(image, words))
    parts.append("</div>")
    if not full:
        if pictures.expired and not shown:
            parts.append(f'<p class="image-expired">{_expired_words()}</p>')
        elif pictures.thumb_error and not shown and not message.image_error:
            parts.append(
                f'<p class="image-error">{words["preview_failed"]} '
                f"{escape(pictures.thumb_error)}</p>"
            )
        if waiting and not gave_up:
            parts.append(
                '<p class="image-status" role="status"><span class="spinner" aria-hidden="true">'
                f"</span> {words['loading_image']}</p>"
            )
        else:
            if message.image_error:
                parts.append(
                    f'<p class="image-error">{words["image_failed"]} '
                    f"{escape(message.image_error)}</p>"
                )
            elif gave_up:
                parts.append(f'<p class="image-error">{words["image_stalled"]}</p>')
            url = reverse("inbox:load_image", args=[pk])
            label = words["try_again" if message.image_error or gave_up else "load_image"]
            parts.append(
                f'<form method="post" action="{url}" hx-post="{url}" hx-target="#image-{pk}" '
                f'hx-swap="outerHTML">{reader.csrf_input}'
                f'<button type="submit" class="button button-small">{label}</button></form>'
            )
    parts.append("</div>")
    return mark_safe("".join(parts))


def _expired_words() -> str:
    days = settings.PICTURES_RETENTION_DAYS
    words = ngettext(
        "This picture was deleted after %(days)d day without being viewed. Load it again from "
        "the device:",
        "This picture was deleted after %(days)d days without being viewed. Load it again from "
        "the device:",
        days,
    )
    return escape(words % {"days": days})


def _image_sizes(image, words: dict[str, str]) -> str:
    parts = []
    if image.thumb_width and image.thumb_height:
        parts.append(
            f'<span class="image-dims" title="{words["thumbnail_size"]}">'
            f"{int(image.thumb_width)}×{int(image.thumb_height)}</span>"
        )
    if image.thumb_length:
        parts.append(_size_span(_("thumbnail %(size)s"), image.thumb_length))
    if image.length:
        parts.append(_size_span(_("image %(size)s"), image.length))
    if image.hd_length:
        parts.append(_size_span(_("HD %(size)s"), image.hd_length))
    return " ".join(parts)


def _size_span(words: str, size: int) -> str:
    return f"<span>{escape(words % {'size': filesizeformat(size)})}</span>"


# --- app messages: share cards ---------------------------------------------------------------

_SHARE_ICONS = {VIDEO: "▶", LIVE: "●", MINI_PROGRAM: "◈", LINK: "🔗"}
_SHARE_WORDS = {
    VIDEO: "shared_video",
    LIVE: "shared_live",
    MINI_PROGRAM: "shared_mini_program",
    LINK: "shared_link",
}
# Video and live covers keep their shape between these (a 9:16 phone video would make a card
# taller than the thread), cropped to fill.
_TALLEST, _WIDEST = 3 / 4, 16 / 9


def render_share_card(message: Message, reader: Reader) -> str:
    """An app message's card: what the share carries (inbox.share_cards, read at ingest), a
    Channels video or live with its cover. A letter stored before cards, or whose XML could not
    be read, gets the plain card: its title (or "Untitled") and its type.

    No URL from the XML is ever loaded by the browser: the cover is our stored copy (the
    pictures app fetches it when the thread is opened, like an image letter's thumbnail; a
    placeholder until then, redrawn by the thread's poll), and the author's picture is their
    initial."""
    meta = message.image_meta
    card = ShareCard.from_dict(meta.get("card")) if isinstance(meta, dict) else None
    if card is None:
        return _plain_app_card(message, reader.words)
    words = reader.words
    kind = card.kind
    channels = kind in (VIDEO, LIVE)
    parts = [f'<div class="share-card share-{kind}">']
    pictures = pictures_of(message)
    # A link or mini program shows its thumbnail's frame once the pictures app has taken the
    # thumbnail on (a host it fetches from); one it never fetches keeps the icon.
    if channels or pictures != NO_PICTURES:
        parts.append(_share_cover_frame(card, pictures, words))
    else:
        parts.append(
            f'<span class="app-icon" aria-hidden="true">{_SHARE_ICONS.get(kind, "🔗")}</span>'
        )
    parts.append('<div class="share-body">')
    title = escape(card.title) or (escape(card.author) if channels else "") or words["untitled"]
    if card.url and kind == LINK:  # a mini program's <url> only asks to upgrade WeChat
        url = escape(card.url)
        parts.append(
            f'<a class="share-title" href="{url}" target="_blank" '
            f'rel="noopener noreferrer nofollow">{title}</a>'
        )
    else:
        parts.append(f'<span class="share-title">{title}</span>')
    if card.description:
        description = escape(card.description).replace("\n", "<br>")
        parts.append(f'<span class="share-description">{description}</span>')
    if card.author:
        # The initial in the author's colour, not the XML's avatar URL (a WeChat CDN address the
        # browser must not call); the same author always gets the same colour.
        hue = zlib.crc32(card.author.encode()) % 360
        initial = escape(card.author[:1].upper())
        parts.append(
            f'<span class="share-author"><span class="avatar share-avatar" data-hue="{hue}" '
            f'aria-hidden="true">{initial}</span>{escape(card.author)}</span>'
        )
    kind_words = words[_SHARE_WORDS.get(kind, "app_message")]
    parts.append(f'<span class="app-kind">{kind_words}</span>')
    if pictures.thumb is None:
        parts.append(_share_cover_problem(pictures, words))
    parts.append("</div></div>")
    return "".join(parts)


def _share_cover_problem(pictures: LetterPictures, words: dict[str, str]) -> str:
    """Why the card shows no cover, when it is known: retention deleted our copy (the cover URL
    has expired upstream by then, so it is not fetched again), or the download was refused."""
    if pictures.expired:
        days = settings.PICTURES_RETENTION_DAYS
        text = ngettext(
            "The cover was deleted after %(days)d day without being viewed.",
            "The cover was deleted after %(days)d days without being viewed.",
            days,
        )
        return f'<span class="image-expired">{escape(text % {"days": days})}</span>'
    if pictures.thumb_error:
        return (
            f'<span class="image-error">{words["cover_failed"]} '
            f"{escape(pictures.thumb_error)}</span>"
        )
    return ""


def _share_cover_frame(card: ShareCard, pictures: LetterPictures, words: dict[str, str]) -> str:
    width, height = card.cover_width, card.cover_height
    if width and height:
        ratio = min(max(width / height, _TALLEST), _WIDEST)
        shape = f"{round(ratio * 1000)} / 1000"
    else:
        shape = "3 / 4" if card.kind in (VIDEO, LIVE) else "1 / 1"
    # The placeholder lies under our stored copy of the cover; a copy that fails to load (the
    # retention sweep deleted it a moment ago) is drawn as the placeholder too (inbox.css), not
    # as a broken picture. No alt text: the card's own text says what the cover shows.
    icon = _SHARE_ICONS.get(card.kind, "▧")
    if pictures.thumb_pending and pictures.thumb is None:
        picture = (
            '<span class="image-placeholder is-loading" role="img" '
            f'aria-label="{words["loading_cover"]}">{icon}</span>'
        )
    else:
        picture = f'<span class="image-placeholder" aria-hidden="true">{icon}</span>'
    if pictures.thumb is not None:
        picture += f'<img src="{escape(pictures.thumb.url)}" alt="" loading="lazy">'
    badge = ""
    if card.kind == LIVE:
        status = {1: "live_now", 2: "live_ended"}.get(card.live_status or 0)
        if status:
            badge = (
                f'<span class="share-badge share-badge-{status.replace("_", "-")}" '
                f'title="{words["live_status_note"]}">{words[status]}</span>'
            )
    elif card.duration:
        minutes, seconds = divmod(card.duration, 60)
        hours, minutes = divmod(minutes, 60)
        length = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
        badge = f'<span class="share-badge">▶ {length}</span>'
    return (
        f'<div class="share-cover"><div class="image-frame" data-aspect-ratio="{shape}">'
        f"{picture}</div>{badge}</div>"
    )


def _plain_app_card(message: Message, words: dict[str, str]) -> str:
    video = message.app_type == 51
    return (
        '<div class="app-card">'
        f'<span class="app-icon" aria-hidden="true">{"▶" if video else "🔗"}</span> '
        '<span class="app-text">'
        f'<span class="app-title">{escape(message.title) or words["untitled"]}</span> '
        f'<span class="app-kind">{words["shared_video" if video else "app_message"]}</span>'
        "</span></div>"
    )
