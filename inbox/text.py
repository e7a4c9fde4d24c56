"""Text from letters made safe to show: escaped, with http(s) links, search snippets with the
match marked, system notices' sentences, message type names and raw payloads.

Everything that returns markup escapes first and marks up second; only http(s) URLs become
links, so a letter can never carry a `javascript:` link into the page. Every function here runs
in time linear in its input (no regular expression here can backtrack, no loop rescans), so a
hostile letter of any size costs milliseconds, not a web worker: see
tests/test_rendering_safety.py.
"""

from __future__ import annotations

import json
import re
import reprlib
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from inbox.models import Message

# An http(s) URL, stopping at whitespace, quotes, angle brackets and CJK punctuation (a Chinese
# sentence often runs straight on after a link). Linear: after the scheme there is one greedy
# character class and nothing to backtrack into.
URL_RE = re.compile(r"""\bhttps?://[^\s<>"'\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+""", re.I)
# Plain ASCII punctuation that ends a sentence rather than a URL.
_TRAILING = ".,;:!?)]}'\""


def linkify(text: str) -> SafeString:
    """Escaped text with line breaks kept and http(s) URLs made into links."""
    text = text or ""
    parts: list[str] = []
    position = 0
    for match in URL_RE.finditer(text):
        start, end = match.start(), _trim_url(text, match.start(), match.end())
        url = escape(text[start:end])
        parts.append(escape(text[position:start]))
        parts.append(
            f'<a href="{url}" target="_blank" rel="noopener noreferrer nofollow">{url}</a>'
        )
        position = end
    parts.append(escape(text[position:]))
    return mark_safe("".join(parts).replace("\r\n", "\n").replace("\n", "<br>"))


def _trim_url(text: str, start: int, end: int) -> int:
    """Drop sentence punctuation after a URL, but keep a closing bracket that the URL itself
    opened, as in wiki links. The brackets are counted once, so this stays linear (a loop that
    recounted them per bracket was quadratic)."""
    trimmed = end
    while trimmed > start and text[trimmed - 1] in _TRAILING:
        trimmed -= 1
    if trimmed == end:
        return end
    opened = text.count("(", start, trimmed)
    closed = text.count(")", start, trimmed)
    while trimmed < end and text[trimmed] == ")" and opened > closed:
        trimmed += 1
        closed += 1
    return trimmed


def find_folded(text: str, query: str) -> tuple[int, int] | None:
    """(start, end) in `text` of the first case-insensitive match of `query`, or None.

    Case folding can change a string's length ("İ" folds to two code points, "ß" to "ss"), so
    the match is found in the folded text and its ends are mapped back to the original
    characters. str.find and the mapping are linear, whatever the input."""
    folded_query = query.casefold()
    if not folded_query:
        return None
    folded = text.casefold()
    index = folded.find(folded_query)
    if index < 0:
        return None
    if len(folded) == len(text):
        # Folding never shortens a character, so equal lengths mean one to one.
        return index, index + len(folded_query)
    start = _unfolded_index(text, index)
    return start, _unfolded_index(text, index + len(folded_query) - 1) + 1


_FOLD_CHUNK = 4096


def _unfolded_index(text: str, folded_index: int) -> int:
    """The index of the character of `text` whose folding covers position `folded_index` of
    text.casefold(). Case folding is context-free, so whole chunks can be folded at C speed
    and only the last one is walked character by character."""
    consumed = 0
    for chunk_start in range(0, len(text), _FOLD_CHUNK):
        chunk = text[chunk_start : chunk_start + _FOLD_CHUNK]
        size = len(chunk.casefold())
        if consumed + size > folded_index:
            for offset, char in enumerate(chunk):
                consumed += len(char.casefold())
                if consumed > folded_index:
                    return chunk_start + offset
        consumed += size
    return len(text)


SNIPPET_BEFORE = 30
SNIPPET_AFTER = 80


def highlight(text: str, query: str) -> SafeString:
    """A short snippet of `text` around the first match of `query`, escaped, with the match in
    <mark>. Text without the match gives its beginning."""
    text = " ".join((text or "").split())
    query = " ".join((query or "").split())
    span = find_folded(text, query) if query else None
    if span is None:
        head = text[: SNIPPET_BEFORE + SNIPPET_AFTER]
        return mark_safe(escape(head) + ("…" if len(text) > len(head) else ""))
    match_start, match_end = span
    start = max(0, match_start - SNIPPET_BEFORE)
    end = match_end + SNIPPET_AFTER
    return mark_safe(
        ("…" if start > 0 else "")
        + escape(text[start:match_start])
        + f"<mark>{escape(text[match_start:match_end])}</mark>"
        + escape(text[match_end:end])
        + ("…" if end < len(text) else "")
    )


def system_text(message: Message) -> str:
    """A system notice's words (not escaped). A recall may come as XML; its <replacemsg> is the
    sentence, perhaps in CDATA. Found with str.find: a regular expression here was quadratic."""
    content = (message.content or "").strip()
    if not content.startswith("<"):
        return content or f"[{type_label(message.msg_type)}]"
    opening = content.find("<replacemsg>")
    closing = content.find("</replacemsg>", opening) if opening >= 0 else -1
    if closing >= 0:
        sentence = content[opening + len("<replacemsg>") : closing].strip()
        if sentence.startswith("<![CDATA["):
            sentence = sentence[len("<![CDATA[") :]
            if sentence.endswith("]]>"):
                sentence = sentence[: -len("]]>")]
        if sentence.strip():
            return sentence.strip()
    if message.msg_type == Message.Type.RECALL:
        return _("A message was recalled.")
    return f"[{type_label(message.msg_type)}]"


def type_label(msg_type: int | None) -> str:
    """A message type in the reader's language: "Image", or "message type 9999"."""
    if msg_type is None:
        return ""
    try:
        return str(Message.Type(msg_type).label)
    except ValueError:
        return _("message type %(number)s") % {"number": msg_type}


_RAW_SUMMARY = reprlib.Repr()
_RAW_SUMMARY.maxlevel, _RAW_SUMMARY.maxstring, _RAW_SUMMARY.maxother = 20, 10_000, 1_000


def pretty_json(value: Any) -> str:
    """A raw payload for an admin to read. One nested too deep for the encoder is summarised
    instead of failing the page."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (RecursionError, ValueError, TypeError):
        return _RAW_SUMMARY.repr(value)


def person(user) -> str:
    """A staff member as the inbox names them: the full name, else the user name."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
