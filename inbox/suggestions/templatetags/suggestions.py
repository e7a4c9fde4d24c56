from __future__ import annotations

from django import template

from inbox.browse import ThreadPage
from inbox.models import Message

register = template.Library()


@register.filter
def awaits_answer(page: ThreadPage | None) -> bool:
    """The page shows the thread's newest letter and it is the viewer's: the composer then
    asks for suggestions (the strip's view checks again, from the database)."""
    if page is None or not page.at_tail:
        return False
    letters = [message for message in page.messages if message.kind == Message.Kind.LETTER]
    return bool(letters) and not letters[-1].is_sender
