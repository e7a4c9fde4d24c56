"""`{{ session|label_chips }}`: the session's labels (read with it by with_label_chips)."""

from __future__ import annotations

from django import template

from inbox.labels.chips import Chip, chips_of

register = template.Library()


@register.filter
def label_chips(session) -> list[Chip]:
    return chips_of(session)
