"""Suggested replies: pairs of questions and the team's answers (at compose, after a sync pass,
rebuilt), the ranking, the composer's strip (access, account scoping, escaping, query counts),
and the commands."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account
from inbox import services as inbox_services
from inbox.models import CannedReply, Message, Session
from inbox.suggestions import pairing, ranking, services
from inbox.suggestions.models import PairingProgress, QAPair
from inbox.suggestions.pairing import Letter, pairs_in_thread
from tests.conftest import store_conversation


@pytest.fixture(autouse=True)
def _no_kept_indexes():
    """Each process keeps an account's question index a while; tests reuse account ids."""
    services.forget_indexes()
    yield
    services.forget_indexes()


TEXT = Message.Type.TEXT


def _letter(pk: int, is_sender: bool, text: str, msg_type: int = TEXT) -> Letter:
    return Letter(pk, 1, 1, is_sender, msg_type, text, datetime(2024, 1, 1, tzinfo=UTC))


def _pairs(account: Account) -> set[tuple[str, str]]:
    return set(QAPair.objects.filter(account=account).values_list("question", "answer"))


# --- pairing -------------------------------------------------------------------------------


def test_an_answer_pairs_with_the_viewers_last_text_letters_since_the_previous_answer():
    thread = [
        _letter(1, False, "你好"),
        _letter(2, True, "您好，请问有什么可以帮您？"),
        _letter(3, False, "第一句"),
        _letter(4, False, "<msg>image</msg>", msg_type=Message.Type.IMAGE),
        _letter(5, False, "第二句"),
        _letter(6, False, "第三句"),
        _letter(7, False, "什么时候  发货？"),
        _letter(8, True, "今天下单明天发货"),
    ]

    pairs = list(pairs_in_thread(thread))

    assert [(p.question, p.answer, p.question_message_id, p.answer_message_id) for p in pairs] == [
        ("你好", "您好，请问有什么可以帮您？", 1, 2),
        ("第二句 第三句 什么时候 发货？", "今天下单明天发货", 7, 8),
    ]
    assert "发货" in pairs[1].question_tokens.split()


def test_pictures_short_answers_and_answers_without_a_question_make_no_pair():
    thread = [
        _letter(1, False, "这个有货吗"),
        _letter(2, True, "<msg>picture</msg>", msg_type=Message.Type.IMAGE),
        _letter(3, True, "如图，有货的"),  # answers nothing new: the picture answered
        _letter(4, False, "好的谢谢"),
        _letter(5, True, "好的"),  # too short to be worth suggesting
        _letter(6, False, "？？？"),  # no token to match on
        _letter(7, True, "请问您想问什么呢"),
    ]

    assert list(pairs_in_thread(thread)) == []


def test_a_reply_composed_here_is_paired_with_the_question_in_its_transaction(synced, member):
    session = store_conversation(synced, "s-compose", [(False, "请问什么时候发货？")])

    reply = inbox_services.compose_reply(session, member, "亲，48小时内发货", uuid.uuid4())

    pair = QAPair.objects.get(answer_message=reply)
    assert (pair.question, pair.answer, pair.account_id) == (
        "请问什么时候发货？",
        "亲，48小时内发货",
        synced.pk,
    )


def test_a_sync_pass_pairs_the_answers_written_on_the_phone(account):
    from inbox.sync import sync_account

    sync_account(account)

    assert ("你好，请问这款保温杯还有货吗？", "您好！有货的，今天下单明天发货～") in _pairs(account)
    assert PairingProgress.objects.get(account=account).last_message_id == (
        Message.objects.order_by("-pk").values_list("pk", flat=True).first()
    )


def test_pairing_after_a_pass_is_idempotent_and_moves_on_from_its_watermark(synced):
    store_conversation(synced, "s-water", [(False, "尺码偏大吗"), (True, "标准码，按平时的拍")])
    pairing.pair_new_answers(synced.pk)
    before = _pairs(synced)

    assert pairing.pair_new_answers(synced.pk) == 0
    later = int(time.time()) - 600
    store_conversation(
        synced, "s-water", [(False, "能开发票吗"), (True, "可以的，订单页申请开票")], start=later
    )
    pairing.pair_new_answers(synced.pk)

    assert _pairs(synced) - before == {("能开发票吗", "可以的，订单页申请开票")}


def test_rebuilt_pairs_are_the_pairs_kept_incrementally(synced, member):
    session = store_conversation(
        synced, "s-rebuild", [(False, "退款多久到账"), (True, "1-3个工作日内到账")]
    )
    store_conversation(
        synced, "s-rebuild", [(False, "还有一个问题：能改地址吗")], start=int(time.time()) - 600
    )
    inbox_services.compose_reply(session, member, "可以的，请把新地址发给我们", uuid.uuid4())
    pairing.pair_new_answers(synced.pk)
    kept = set(
        QAPair.objects.values_list(
            "account", "question", "answer", "question_message", "answer_message", "answered_at"
        )
    )

    call_command("rebuild_suggestions", verbosity=0)

    assert (
        set(
            QAPair.objects.values_list(
                "account",
                "question",
                "answer",
                "question_message",
                "answer_message",
                "answered_at",
            )
        )
        == kept
    )
    assert len(kept) >= 4  # the sandbox's scripted answers and the two above


# --- ranking -------------------------------------------------------------------------------


def test_tokens_are_words_characters_and_pairs_of_characters_without_numbers():
    assert ranking.tokens("Do you ship 2 HK? 发货吗 订单 20240101") == [
        "do",
        "you",
        "ship",
        "hk",
        "发",
        "货",
        "吗",
        "发货",
        "货吗",
        "订",
        "单",
        "订单",
    ]


def test_the_most_similar_question_ranks_its_answer_first_and_answers_are_not_repeated():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    earlier = [
        ("什么时候发货", "48小时内发货"),
        ("啥时候能发货呀", "48小时内发货"),
        ("可以退款吗", "支持七天无理由退货"),
        ("尺码准吗", "标准码"),
    ]
    index = ranking.QuestionIndex(
        (key, " ".join(ranking.tokens(question))) for key, (question, _) in enumerate(earlier)
    )
    answered = {
        key: ranking.Answered(key, question, answer, now - timedelta(minutes=key))
        for key, (question, answer) in enumerate(earlier)
    }

    suggestions = ranking.suggest(
        ranking.tokens("请问什么时候能发货？"),
        index,
        lambda keys: {key: answered[key] for key in keys},
        limit=3,
        candidates=10,
    )

    assert [s.text for s in suggestions][:1] == ["48小时内发货"]
    assert len({s.text for s in suggestions}) == len(suggestions)


# --- the composer's strip ------------------------------------------------------------------


def _history(account: Account, prefix: str = "h") -> None:
    for number, (question, answer) in enumerate(
        [
            ("什么时候发货？", "亲，现货订单48小时内发货"),
            ("下单后多久能发出", "亲，现货订单48小时内发货"),
            ("可以退款吗", "支持七天无理由退货"),
            ("尺码偏大还是偏小", "标准码，按平时的尺码拍"),
        ]
    ):
        store_conversation(account, f"{prefix}-{number}", [(False, question), (True, answer)])
    pairing.pair_new_answers(account.pk)


def _strip(client, session: Session, **headers):
    return client.get(reverse("inbox:suggestions", args=[session.pk]), **headers)


def test_the_strip_suggests_the_teams_earlier_answers_with_their_questions(member_client, synced):
    _history(synced)
    session = store_conversation(synced, "waiting", [(False, "我的订单啥时候发货")])

    response = _strip(member_client, session, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-suggestion="亲，现货订单48小时内发货"') == 1
    assert "什么时候发货？" in html  # the earlier question, in the hover card
    assert 'type="button"' in html and "<form" not in html  # inserting never submits


def test_suggestions_come_only_from_the_sessions_own_account(member_client, synced, outsider):
    other = Account.objects.get(app_id="wx_other")
    store_conversation(other, "other-1", [(False, "什么时候发货？"), (True, "别家的发货答复")])
    pairing.pair_new_answers(other.pk)
    CannedReply.objects.create(title="发货", text="别家的罐头回复：发货", account=other)
    session = store_conversation(synced, "waiting", [(False, "什么时候发货？")])

    html = _strip(member_client, session).content.decode()

    assert "别家" not in html
    assert [s.text for s in services.suggestions_for(session)] == []


def test_another_accounts_session_is_404_and_posting_is_refused(client, synced, outsider, member):
    session = store_conversation(synced, "waiting", [(False, "什么时候发货？")])
    client.force_login(outsider)
    assert _strip(client, session).status_code == 404
    client.force_login(member)
    assert client.post(reverse("inbox:suggestions", args=[session.pk])).status_code == 405
    client.logout()
    assert _strip(client, session).status_code == 302


def test_suggested_texts_and_questions_are_escaped(member_client, synced):
    store_conversation(
        synced,
        "hostile",
        [
            (False, '发货<img src=x onerror="alert(1)">'),
            (True, '发货了"><script>alert(2)</script>'),
        ],
    )
    pairing.pair_new_answers(synced.pk)
    session = store_conversation(synced, "waiting", [(False, "发货了吗")])

    html = _strip(member_client, session).content.decode()

    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_matching_canned_replies_are_offered_and_marked(member_client, synced):
    _history(synced)
    CannedReply.objects.create(title="开发票", text="在订单详情页申请开票即可", account=synced)
    CannedReply.objects.create(title="发票（全店）", text="电子发票3个工作日内发到邮箱")
    CannedReply.objects.create(title="退货地址", text="寄回杭州市西湖区", account=synced)
    session = store_conversation(synced, "waiting", [(False, "可以开发票吗")])

    suggestions = services.suggestions_for(session)
    html = _strip(member_client, session).content.decode()

    assert {s.canned_title for s in suggestions if s.canned} == {"开发票", "发票（全店）"}
    assert html.count("suggestion-badge") == 2


def test_nothing_is_suggested_when_the_account_wrote_last(member_client, synced):
    _history(synced)
    session = store_conversation(synced, "answered", [(False, "什么时候发货？"), (True, "今天发")])

    response = _strip(member_client, session)

    assert response.status_code == 200
    assert 'data-suggestion="' not in response.content.decode()
    assert " hidden>" in response.content.decode()


def test_the_strip_takes_the_same_queries_however_much_history_there_is(member_client, synced):
    CannedReply.objects.create(title="发货", text="48小时内发货", account=synced)
    session = store_conversation(synced, "waiting", [(False, "什么时候发货？")])
    _history(synced, "a")
    _strip(member_client, session)  # the session and the user are cached alike afterwards
    with CaptureQueriesContext(connection) as few:
        _strip(member_client, session)
    for round_ in range(3):
        _history(synced, f"more-{round_}")
    with CaptureQueriesContext(connection) as many:
        response = _strip(member_client, session)

    assert response.content.decode().count('data-suggestion="') >= 2
    assert len(many) == len(few)
    assert len(many) <= 7  # session + user, the access check, question, window, pairs, canned


def test_the_thread_loads_the_strip_only_when_the_viewer_wrote_last(member_client, synced):
    waiting = store_conversation(synced, "waiting", [(False, "什么时候发货？")])
    answered = store_conversation(
        synced, "answered", [(False, "什么时候发货？"), (True, "今天发货的")]
    )
    url = reverse("inbox:suggestions", args=[waiting.pk])

    assert f'hx-get="{url}"' in member_client.get(waiting.get_absolute_url()).content.decode()
    html = member_client.get(answered.get_absolute_url()).content.decode()
    # The empty strip is there for a letter that arrives later, but asks for nothing now.
    answered_url = reverse("inbox:suggestions", args=[answered.pk])
    assert f'data-suggestions-url="{answered_url}"' in html
    assert f'hx-get="{answered_url}"' not in html


def test_the_demo_history_leaves_answered_questions_to_suggest_from(synced, member):
    from inbox import demo_history

    demo_history.make_history(synced, [member], per_day=4, days=6)

    assert QAPair.objects.filter(account=synced).count() >= 20
    waiting = [
        session
        for session in Session.objects.filter(
            account=synced, msg_session_id__startswith=demo_history.SESSION_PREFIX
        )
        if services.waiting_question(session)
    ]
    assert waiting
    assert all(services.suggestions_for(session) for session in waiting)


# --- commands ------------------------------------------------------------------------------


def test_evaluate_suggestions_reports_hits_on_held_out_questions(synced, capsys):
    _history(synced)
    call_command("evaluate_suggestions", conversations=300, account=synced.app_id)

    out = capsys.readouterr().out
    assert out.count("hit@3") == 2 * 3  # the figure and its baseline, for three sets
    assert "unseen wordings" in out and f"account {synced.pk}" in out


def test_rebuild_suggestions_for_one_account_keeps_the_others(synced, outsider):
    other = Account.objects.get(app_id="wx_other")
    store_conversation(other, "other-1", [(False, "有货吗"), (True, "有的，现货")])
    pairing.pair_new_answers(other.pk)
    QAPair.objects.filter(account=synced).delete()

    call_command("rebuild_suggestions", account=synced.app_id, verbosity=0)

    assert QAPair.objects.filter(account=synced).exists()
    assert _pairs(other) == {("有货吗", "有的，现货")}


@pytest.mark.parametrize("option", [{"account": "nope"}])
def test_commands_refuse_an_unknown_account(db, option):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("rebuild_suggestions", **option)
    with pytest.raises(CommandError):
        call_command("evaluate_suggestions", **option)
