"""Strings from the upstream outside sync (contactList nicknames, getProfile names) are cleaned
and cut as sync's are: a NUL or a lone surrogate made PostgreSQL refuse the row (DataError),
which aborted the nickname task and made "Check connection" answer 500. Run on SQLite and, with
DATABASE_URL=postgres://…, on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import DataError, transaction

from accounts.models import Account
from accounts.sandbox import PEERS
from accounts.services import check_connection
from inbox import contacts
from inbox.models import Session

CONTACTS = "/finder/contactList"
PROFILE = "/finder/getProfile"
HOSTILE = "王\x00小明\ud800"


def contact(peer: str, nickname: str) -> dict:
    return {"username": peer, "nickname": nickname, "headUrl": "", "signature": ""}


def test_a_nickname_with_a_nul_and_a_lone_surrogate_is_cleaned_and_stored(synced, sandbox):
    session = Session.objects.get(account=synced, peer_username=PEERS[1].username)
    sandbox.inject(
        "answer", path=CONTACTS, data=[contact(PEERS[1].username, HOSTILE + "x" * 500)], times=10
    )

    assert contacts.fill_peer_nicknames([session.pk]) == 1

    session.refresh_from_db()
    assert session.peer_nickname.startswith("王\ufffd小明?x")  # as sync cleans them
    assert "\x00" not in session.peer_nickname
    assert len(session.peer_nickname) == Session._meta.get_field("peer_nickname").max_length


def test_one_hostile_nickname_does_not_stop_the_others(synced, sandbox):
    sessions = list(
        Session.objects.filter(peer_username__in=[PEERS[1].username, PEERS[2].username])
        .order_by("pk")
        .values_list("pk", "peer_username")
    )
    (hostile_pk, hostile), (good_pk, good) = sessions
    # Whichever peer is looked up first, each lookup answers both (in any order of calls).
    entries = [contact(hostile, "坏\x00名字"), contact(good, "好名字")]
    sandbox.inject("answer", path=CONTACTS, data=entries, times=2)

    assert contacts.fill_peer_nicknames([hostile_pk, good_pk]) == 2

    names = dict(
        Session.objects.filter(pk__in=[hostile_pk, good_pk]).values_list("pk", "peer_nickname")
    )
    assert names == {hostile_pk: "坏\ufffd名字", good_pk: "好名字"}


def test_check_connection_cleans_the_profiles_names(account, sandbox):
    sandbox.inject(
        "answer",
        path=PROFILE,
        data={
            "mainFinderUsername": "v2_shop\x00@finder",
            "aliasInfo": [{"nickname": "沙盒\x00小店\udfff" + "店" * 300, "roleType": 3}],
        },
    )

    profile = check_connection(account)

    account.refresh_from_db()
    assert (account.own_username, account.nickname) == (profile.own_username, profile.nickname)
    assert account.own_username == "v2_shop\ufffd@finder"
    assert account.nickname.startswith("沙盒\ufffd小店?店")
    assert len(account.nickname) == Account._meta.get_field("nickname").max_length


@pytest.mark.postgres
def test_postgresql_refuses_a_nul_which_is_why_it_is_cleaned(synced):
    """The hazard these tests guard against, shown on the real database."""
    with pytest.raises(DataError), transaction.atomic():
        Session.objects.filter(account=synced).update(peer_nickname="a\x00b")
