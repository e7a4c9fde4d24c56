"""The report page: figures for the accounts a user works on, filtered by the URL (range, account,
agent, wall-clock or business time), the figures fragment swapped by htmx, and CSV exports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from accounts.models import Account
from inbox.reports import figures, tables
from inbox.reports.figures import Scope
from inbox.reports.models import Episode

BOM = "\ufeff"  # so Excel reads the CSV as UTF-8 (Chinese names and words)
CONVERSATIONS_PAGE = 2000
LONGEST_RANGE_DAYS = 366


class ReportFilter(forms.Form):
    range = forms.ChoiceField(
        choices=[
            ("today", gettext_lazy("Today")),
            ("yesterday", gettext_lazy("Yesterday")),
            ("7d", gettext_lazy("Last 7 days")),
            ("30d", gettext_lazy("Last 30 days")),
            ("custom", gettext_lazy("Custom")),
        ],
        required=False,
    )
    start = forms.DateField(required=False, label=gettext_lazy("From"))
    end = forms.DateField(required=False, label=gettext_lazy("To"))
    account = forms.IntegerField(required=False, min_value=1)
    agent = forms.IntegerField(required=False, min_value=1)
    time = forms.ChoiceField(
        choices=[
            ("wall", gettext_lazy("Wall-clock time")),
            ("business", gettext_lazy("Business hours")),
        ],
        required=False,
    )

    def clean(self):
        data = super().clean()
        data["range"] = data.get("range") or "7d"
        data["time"] = data.get("time") or "wall"
        if data["range"] == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError(_("A custom range needs a first and a last day."))
            if end < start:
                raise forms.ValidationError(_("The last day comes before the first."))
            if (end - start).days >= LONGEST_RANGE_DAYS:
                raise forms.ValidationError(_("A report covers at most a year."))
        return data


def _scope(request: HttpRequest, data: dict) -> tuple[Scope, list[Account], list, object]:
    """The accounts and agent the figures cover; a non-member's account or agent is a 404."""
    accounts = list(Account.objects.visible_to(request.user).order_by("name", "pk"))
    chosen = accounts
    if data.get("account"):
        chosen = [get_object_or_404(Account.objects.visible_to(request.user), pk=data["account"])]
    agents = list(
        get_user_model()
        .objects.filter(finder_accounts__in=accounts, is_active=True)
        .distinct()
        .order_by("username")
    )
    agent = None
    if data.get("agent"):
        agent = next((user for user in agents if user.pk == data["agent"]), None)
        if agent is None:
            raise Http404("no such agent in your accounts")
    scope = Scope(tuple(account.pk for account in chosen), agent.pk if agent else None)
    return scope, accounts, agents, agent


@require_GET
@login_required
def report(request: HttpRequest) -> HttpResponse:
    form = ReportFilter(request.GET)
    if not form.is_valid():
        context = {"form": form, "errors": form.non_field_errors() or form.errors}
        return render(request, "inbox/reports.html", context, status=400)
    data = form.cleaned_data
    scope, accounts, agents, agent = _scope(request, data)
    period = tables.default_period(data["range"], data.get("start"), data.get("end"))
    export = request.GET.get("export")
    if export == "conversations":
        return _conversations_csv(scope, period)
    by_hour = period.end - period.start <= timedelta(days=2)
    built = tables.build(
        scope, period, business=data["time"] == "business", by_hour=by_hour, accounts=accounts
    )
    if export:
        table = built.tables.get(export)
        if table is None:
            raise Http404("no such table")
        return _table_csv(table, period)
    context = {
        "form": form,
        "data": data,
        "report": built,
        "charts_json": json.dumps(built.charts, ensure_ascii=False),
        "accounts": accounts,
        "agents": agents,
        "agent": agent,
        "last_day": (period.end - timedelta(microseconds=1)).astimezone(figures.local_zone()),
        "query": request.GET.urlencode(),
        "chart_tables": [built.tables[key] for key in ("volume", "first_response", "heatmap")],
    }
    template = "inbox/reports.html#figures" if _fragment(request) else "inbox/reports.html"
    return render(request, template, context)


def _fragment(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


class _Echo:
    def write(self, value: str) -> str:
        return value


def _filename(name: str, period: figures.Period) -> str:
    zone = figures.local_zone()
    first = period.start.astimezone(zone).date()
    last = (period.end - timedelta(microseconds=1)).astimezone(zone).date()
    return f"finder-report-{name}-{first}-{last}.csv"


def _csv_response(rows: Iterator[list], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield BOM
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _table_csv(table: tables.Table, period: figures.Period) -> StreamingHttpResponse:
    return _csv_response(
        iter([table.columns, *table.rows]), _filename(table.key.replace("_", "-"), period)
    )


def _conversations_csv(scope: Scope, period: figures.Period) -> StreamingHttpResponse:
    """Every conversation opened in the period, oldest first, read a page at a time by
    (opened_at, id) so the response never holds more than one page of rows."""
    zone = figures.local_zone()

    def moment(value) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    def person(user, fallback: str = "") -> str:
        if user is None:
            return fallback
        return user.get_full_name() or user.get_username()

    def rows() -> Iterator[list]:
        yield [
            _("Session"),
            _("Account"),
            _("Viewer"),
            _("Opened"),
            _("First response"),
            _("First responder"),
            _("Resolved"),
            _("Resolver"),
            _("Agent"),
            _("Letters"),
            _("Replies"),
        ]
        episodes = (
            Episode.objects.filter(
                account_id__in=scope.account_ids,
                opened_at__gte=period.start,
                opened_at__lt=period.end,
            )
            .select_related("session", "account", "first_responder", "resolver", "assignee")
            .order_by("opened_at", "pk")
        )
        if scope.agent_id is not None:
            episodes = episodes.filter(assignee_id=scope.agent_id)
        after = None
        while True:
            page = episodes
            if after is not None:
                page = page.filter(opened_at__gte=after[0]).exclude(
                    opened_at=after[0], pk__lte=after[1]
                )
            batch = list(page[:CONVERSATIONS_PAGE])
            for episode in batch:
                phone = _("The account (phone)") if episode.first_response_at else ""
                yield [
                    episode.session.msg_session_id,
                    episode.account.name,
                    episode.session.display_name,
                    moment(episode.opened_at),
                    moment(episode.first_response_at),
                    person(episode.first_responder, phone),
                    moment(episode.resolved_at),
                    person(episode.resolver),
                    person(episode.assignee),
                    episode.incoming,
                    episode.replies,
                ]
            if len(batch) < CONVERSATIONS_PAGE:
                return
            after = (batch[-1].opened_at, batch[-1].pk)

    return _csv_response(rows(), _filename("conversations", period))
