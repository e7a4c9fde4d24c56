"""benchmark_inbox: builds its data set through the sync engine and the services, times every
request it lists, reuses what it built, and never touches a database it did not create."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import Account
from inbox.benchmarking import dataset, latency
from inbox.models import Message, Session

SMALL = {"messages": 2000, "sessions": 200, "accounts": 2}


def run(**options) -> str:
    out = StringIO()
    call_command("benchmark_inbox", **{**SMALL, "repeat": 2, **options}, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "messages": Message.objects.filter(kind=Message.Kind.LETTER).count(),
        "notes": Message.objects.filter(kind=Message.Kind.NOTE).count(),
        "activity": Message.objects.filter(kind=Message.Kind.ACTIVITY).count(),
        "sessions": Session.objects.count(),
        "accounts": Account.objects.count(),
        "users": get_user_model().objects.count(),
    }


@pytest.mark.django_db
def test_it_builds_the_data_set_and_prints_a_row_for_every_request_and_search():
    output = run()

    assert (
        Message.objects.filter(kind=Message.Kind.LETTER).count()
        == SMALL["messages"] + sum(1 for probe in latency.PROBES if "new letter" in probe.name) * 3
    )  # each "after 1 new letter" probe stored one letter per call (2 timed + 1 counted)
    assert Session.objects.count() == SMALL["sessions"]
    assert set(Message.objects.values_list("msg_type", flat=True)) >= {1, 3, 49, 10000}
    assert Session.objects.exclude(status=Session.Status.OPEN).exists()
    assert Session.objects.exclude(assignee=None).exists()
    for probe in latency.PROBES:
        name = probe.name.removeprefix("search ") if probe.table == "search" else probe.name
        line = next((line for line in output.splitlines() if line.startswith(name)), None)
        assert line is not None, f"no row for {probe.name}"
        p50, p95, queries = (cell.strip() for cell in line.split("|")[-3:])
        assert float(p50) > 0 and float(p95) >= float(p50)
        # A live heartbeat is answered from its signed token alone: no query, by design.
        assert int(queries) == 0 if "heartbeat" in probe.name else int(queries) > 0


@pytest.mark.django_db
def test_a_rerun_with_the_same_parameters_reuses_the_data_set():
    run(skip_timing=True)
    built = counts()

    output = run(skip_timing=True)

    assert "Reused the data set" in output
    assert counts() == built


@pytest.mark.django_db
def test_it_refuses_a_database_that_holds_data_it_did_not_create():
    Account.objects.create(name="Real shop", app_id="wx_real", token="t")

    with pytest.raises(CommandError, match="did not create"):
        run(skip_timing=True)
    assert not Message.objects.exists()
    assert dataset.read_marker() is None


@pytest.mark.django_db
def test_it_refuses_its_own_data_set_built_with_other_parameters():
    run(skip_timing=True)
    built = counts()

    with pytest.raises(CommandError, match="built with"):
        run(skip_timing=True, messages=3000)
    with pytest.raises(CommandError, match="same parameters"):
        run(skip_build=True, sessions=300)
    assert counts() == built


def test_sessions_are_skewed_and_sum_to_the_messages_asked_for():
    plan = dataset.make_plan(dataset.DatasetSpec(messages=1_000_000, sessions=100_000), 0)

    sizes = sorted((s.size for s in plan.sessions), reverse=True)
    assert sum(sizes) == 1_000_000 and len(sizes) == 100_000
    assert sizes[0] == 12_000 and all(5_000 <= size <= 12_000 for size in sizes[:5])
    assert all(2 <= size <= 20 for size in sizes[5:])
    assert len(plan.sessions_of_size(11)) > 1000
