"""Uint64Field: every unsigned 64-bit NewMsgId stored, read back, filtered and ordered exactly, on
whichever database DATABASE_URL names (SQLite by default, PostgreSQL in CI)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from inbox.models import Message, Session

EDGES = [1, 2**53 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


@pytest.fixture
def session(account) -> Session:
    return Session.objects.create(
        account=account, msg_session_id="edge@findermsg", last_message_at=timezone.now()
    )


def store(session: Session, new_msg_id: int) -> Message:
    return Message.objects.create(
        account=session.account,
        session=session,
        new_msg_id=new_msg_id,
        created_at=timezone.now(),
        content=str(new_msg_id),
    )


@pytest.mark.parametrize("new_msg_id", EDGES, ids=str)
def test_unsigned_64_bit_id_is_read_back_exactly(session, new_msg_id):
    pk = store(session, new_msg_id).pk

    message = Message.objects.get(pk=pk)

    assert message.new_msg_id == new_msg_id
    assert type(message.new_msg_id) is int
    assert Message.objects.get(new_msg_id=new_msg_id).pk == pk
    assert list(Message.objects.filter(pk=pk).values_list("new_msg_id", flat=True)) == [new_msg_id]


def test_ids_on_both_sides_of_two_to_the_63_filter_and_order_as_numbers(session):
    for new_msg_id in reversed(EDGES):
        store(session, new_msg_id)

    ordered = list(Message.objects.order_by("new_msg_id").values_list("new_msg_id", flat=True))
    above = Message.objects.filter(new_msg_id__gt=2**63 - 1).values_list("new_msg_id", flat=True)
    between = Message.objects.filter(new_msg_id__range=(2**63 - 1, 2**63 + 1))

    assert ordered == EDGES
    assert sorted(above) == [2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]
    assert between.count() == 3
    assert Message.objects.filter(new_msg_id__lte=2**63).count() == 4
    assert set(
        Message.objects.filter(new_msg_id__in=[2**63, 2**64 - 1, 5]).values_list(
            "new_msg_id", flat=True
        )
    ) == {2**63, 2**64 - 1}
    assert Message.objects.order_by("-new_msg_id").first().new_msg_id == 2**64 - 1


def test_the_column_holds_the_id_shifted_into_the_signed_range(session):
    # The stored form is part of the schema's contract (indexes, raw SQL, other readers).
    message = store(session, 2**64 - 1)

    with connection.cursor() as cursor:
        cursor.execute("SELECT new_msg_id FROM inbox_message WHERE id = %s", [message.pk])
        assert cursor.fetchone() == (2**63 - 1,)


@pytest.mark.parametrize("new_msg_id", [-1, 2**64])
def test_values_outside_the_unsigned_range_are_refused_before_the_database(session, new_msg_id):
    with pytest.raises(ValueError, match="unsigned 64-bit"), transaction.atomic():
        store(session, new_msg_id)

    assert not Message.objects.exists()


def test_a_null_id_is_allowed_for_messages_made_here(session):
    message = store(session, None)

    assert Message.objects.get(pk=message.pk).new_msg_id is None


@pytest.mark.postgres
def test_postgres_stores_the_top_of_the_range_in_a_bigint(session):
    store(session, 2**64 - 1)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'inbox_message' AND column_name = 'new_msg_id'"
        )
        assert cursor.fetchone() == ("bigint",)
    assert Message.objects.get().new_msg_id == 2**64 - 1


@pytest.mark.parametrize("new_msg_id", [2**63 + 1, 2**64 - 1, 7744705344788547000], ids=str)
def test_an_iexact_lookup_finds_the_id_as_typed(session, new_msg_id):
    # Admin's `=new_msg_id` search is an iexact lookup with the term as typed.
    pk = store(session, new_msg_id).pk

    assert list(Message.objects.filter(new_msg_id__iexact=f" {new_msg_id} ")) == [
        Message.objects.get(pk=pk)
    ]


@pytest.mark.parametrize("term", ["abc", "-5", str(2**64), "", "1e5", "²"], ids=repr)
def test_an_iexact_term_that_is_no_id_matches_nothing_without_failing(session, term):
    store(session, 5)

    matches = Message.objects.filter(
        Q(new_msg_id__iexact=term) | Q(content__iexact="5")
    ).values_list("new_msg_id", flat=True)

    assert list(matches) == [5]
    assert not Message.objects.filter(new_msg_id__iexact=term).exists()


def test_the_admin_search_finds_a_message_by_its_new_msg_id(admin_client, session):
    store(session, 2**64 - 1)
    store(session, 2**63)

    response = admin_client.get("/admin/inbox/message/", {"q": str(2**64 - 1)})
    nonsense = admin_client.get("/admin/inbox/message/", {"q": "not-a-number"})

    assert response.status_code == nonsense.status_code == 200
    assert [m.new_msg_id for m in response.context["cl"].result_list] == [2**64 - 1]


def test_the_form_field_takes_the_whole_unsigned_range():
    field = Message._meta.get_field("new_msg_id").formfield()

    assert field.clean(str(2**64 - 1)) == 2**64 - 1
    assert field.clean("0") == 0
    for value in ("-1", str(2**64)):
        with pytest.raises(ValidationError):
            field.clean(value)
