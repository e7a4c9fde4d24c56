"""The session list's rows as HTML, built in Python. Every list page, tab, load-more and poll
renders up to fifty of them; as a template with a dozen tags and filters each, a row cost about
0.3 ms (most of a list request's time once its SQL takes a few milliseconds). The markup is the
one templates/inbox/_session_row.html had; that template now calls this, so there is one place.

Everything interpolated is escaped here; the result is marked safe once.
"""

from __future__ import annotations

from html import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inbox import rendering
from inbox.labels.chips import chips_html
from inbox.models import Session
from inbox.templatetags.inbox_tags import clock, full_time, list_time, session_preview


def render_session_row(
    s: Session, *, list_query: str = "", show_account: bool = False, current_pk: int | None = None
) -> SafeString:
    url = escape(s.get_absolute_url() + (f"?{list_query}" if list_query else ""))
    name = s.display_name
    initial = (name or "?").strip()[:1].upper() or "?"
    moment = s.last_message_at
    recent = rendering.minutes_ago(moment, timezone.now()) is not None
    current = ' aria-current="true"' if current_pk == s.pk else ""
    # The list item wraps the row's link and its bulk-selection checkbox (a checkbox may not
    # sit inside a link); the checkbox belongs to the list's bulk form (inbox/organize).
    pick = escape(_("Select %(name)s") % {"name": name})
    parts = [
        f'<div id="session-item-{s.pk}" class="session-item" role="listitem">\n'
        f'<input type="checkbox" class="session-pick" name="sessions" value="{s.pk}" '
        f'form="bulk-form" aria-label="{pick}">\n',
        f'<a id="session-{s.pk}" class="session-row{" is-unread" if s.unread_count else ""}"'
        f'\n   href="{url}"\n   hx-get="{url}" hx-target="#thread" '
        f'hx-swap="outerHTML" hx-push-url="true"{current}>\n',
        f'  <span class="avatar" data-hue="{(s.pk * 47) % 360}" aria-hidden="true">'
        f"{escape(initial)}</span>\n",
        '  <span class="session-main">\n    <span class="session-line">\n',
        f'      <span class="session-name">{escape(name)}</span>\n',
        f'      <time class="session-time" datetime="{moment.isoformat()}" '
        f'title="{escape(full_time(moment))}"',
        f' data-relative data-clock="{escape(clock(moment))}"' if recent else "",
        f">{escape(list_time(moment))}</time>\n    </span>\n",
        '    <span class="session-line">\n',
        f'      <span class="session-preview">{escape(session_preview(s))}</span>\n',
    ]
    if s.unread_count:
        title = ngettext(
            "%(counter)s unread letter", "%(counter)s unread letters", s.unread_count
        ) % {"counter": s.unread_count}
        parts.append(f'      <span class="badge" title="{escape(title)}">{s.unread_count}</span>\n')
    parts.append("    </span>\n")
    tags = []
    if s.status != Session.Status.OPEN:
        tags.append(
            f'<span class="tag status status-{escape(s.status)}">'
            f"{escape(str(s.get_status_display()))}</span>"
        )
    if s.assignee_id and s.assignee:
        tags.append(
            f'<span class="tag tag-assignee" title="{escape(_("Assignee"))}">'
            f"{escape(rendering.person(s.assignee))}</span>"
        )
    if show_account:
        tags.append(f'<span class="tag">{escape(s.account.name)}</span>')
    tags.extend(chips_html(s))
    if tags:
        parts.append(f'    <span class="session-tags">\n      {"".join(tags)}\n    </span>\n')
    parts.append("  </span>\n</a>\n</div>\n")
    return mark_safe("".join(parts))
