"""The question -> answer pairs: each text letter the account sends, paired with the viewer's text
letters it answers (those since the account's previous letter in the session, newest few joined).

Three writers keep them, all through pairs_in_thread(), so a rebuild finds what they found:
- a reply composed here is paired in the transaction that stores it (services._queue_reply);
  its text is the team's answer whatever becomes of its delivery, and a send recorded later
  (or an echo adopted by sync) changes no text;
- letters the account wrote on the phone arrive through sync: at the end of each pass
  (sync.sync_account, under the account's lease) pair_new_answers() pairs the account's
  outgoing text letters stored since its watermark, a batch at a time. Ingest itself pays
  nothing; a page's transaction never waits for this;
- `manage.py rebuild_suggestions` makes them all again from the letters (rebuild()).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Left

from accounts.models import Account
from inbox.models import THREAD_SEQ, Message
from inbox.suggestions import ranking
from inbox.suggestions.models import QUESTION_LENGTH, PairingProgress, QAPair

# A question is the viewer's last few letters before the answer: earlier ones are greetings or
# about something the team answered otherwise.
QUESTION_LETTERS = 3
# Shorter answers ("好的", "ok") suggest nothing worth a click.
MIN_ANSWER_LENGTH = 4
# Only this much of a letter is read: a question is cut at QUESTION_LENGTH, and an answer
# longer than a reply may be cannot be sent again anyway.
READ_LENGTH = 2000
# How far before a new answer its question may be: a pass's answers are paired by reading
# their sessions' letters back this far.
LOOKBACK = timedelta(days=7)
# Answers paired per pass at most (a first pass over a long backlog continues on the next).
PASS_BATCH = 5000
INSERT_BATCH = 2000

LETTER_FIELDS = ("pk", "account_id", "session_id", "is_sender", "msg_type", "text", "created_at")


@dataclass(frozen=True, slots=True)
class Letter:
    pk: int
    account_id: int
    session_id: int
    is_sender: bool
    msg_type: int
    text: str
    created_at: datetime


def pairs_in_thread(letters: Iterable[Letter]) -> Iterator[QAPair]:
    """The pairs of one session's letters, given in thread order (outgoing letters of any type
    and incoming text letters; others change nothing)."""
    waiting: list[Letter] = []
    for letter in letters:
        if not letter.is_sender:
            if letter.msg_type == Message.Type.TEXT and letter.text.strip():
                waiting.append(letter)
            continue
        answer = ranking.normalize(letter.text) if letter.msg_type == Message.Type.TEXT else ""
        if waiting and len(answer) >= MIN_ANSWER_LENGTH:
            pair = _pair(waiting[-QUESTION_LETTERS:], letter)
            if pair is not None:
                yield pair
        # Any letter of the account answers what came before it, a picture too.
        waiting = []


def _pair(questions: list[Letter], answer: Letter) -> QAPair | None:
    question = ranking.normalize(" ".join(letter.text for letter in questions))
    # The end of a long question is the part the answer answers.
    question = question[-QUESTION_LENGTH:]
    question_tokens = ranking.tokens(question)
    if not question_tokens:
        return None
    return QAPair(
        account_id=answer.account_id,
        question=question,
        question_tokens=" ".join(question_tokens),
        answer=answer.text.strip(),
        question_message_id=questions[-1].pk,
        answer_message_id=answer.pk,
        answered_at=answer.created_at,
    )


def _letters():
    """Letters that take part in pairing, with their text cut to READ_LENGTH, as Letter fields."""
    return (
        Message.objects.filter(kind=Message.Kind.LETTER)
        .filter(Q(is_sender=True) | Q(msg_type=Message.Type.TEXT))
        .annotate(text=Left("content", READ_LENGTH))
        .values_list(*LETTER_FIELDS)
    )


THREAD_ORDER = ("session_id", "created_at", THREAD_SEQ.asc(), "pk")


def _pairs_of(rows: Iterable[tuple]) -> Iterator[QAPair]:
    """Pairs from letter rows sorted by session, then thread position."""
    for _, session_letters in groupby(rows, key=lambda row: row[2]):
        yield from pairs_in_thread(Letter(*row) for row in session_letters)


def _insert(pairs: Iterable[QAPair]) -> int:
    """Store pairs not stored yet (by their answer); returns how many were offered."""
    batch: list[QAPair] = []
    offered = 0
    for pair in pairs:
        batch.append(pair)
        if len(batch) >= INSERT_BATCH:
            QAPair.objects.bulk_create(batch, ignore_conflicts=True)
            offered += len(batch)
            batch = []
    if batch:
        QAPair.objects.bulk_create(batch, ignore_conflicts=True)
        offered += len(batch)
    return offered


def pair_answers(answers: list[Letter]) -> int:
    """Pair these outgoing letters with their questions: one read of their sessions' letters
    from LOOKBACK before the oldest, one insert per INSERT_BATCH pairs."""
    answers = [a for a in answers if a.is_sender and a.msg_type == Message.Type.TEXT]
    if not answers:
        return 0
    wanted = {answer.pk for answer in answers}
    rows = (
        _letters()
        .filter(
            session_id__in={answer.session_id for answer in answers},
            created_at__gte=min(answer.created_at for answer in answers) - LOOKBACK,
            created_at__lte=max(answer.created_at for answer in answers),
        )
        .order_by(*THREAD_ORDER)
    )
    return _insert(pair for pair in _pairs_of(rows) if pair.answer_message_id in wanted)


def pair_reply(reply: Message) -> None:
    """A reply just composed here: pair it now, in its transaction."""
    if reply.msg_type != Message.Type.TEXT:
        return
    pair_answers(
        [
            Letter(
                reply.pk,
                reply.account_id,
                reply.session_id,
                True,
                reply.msg_type,
                reply.content[:READ_LENGTH],
                reply.created_at,
            )
        ]
    )


def pair_new_answers(account_id: int) -> int:
    """Pair the account's outgoing text letters stored since its watermark (at most PASS_BATCH)
    and move the watermark past them. Run at the end of a sync pass, under the account's lease:
    the account's letters below the newest id are then all committed, except replies composed
    here meanwhile, which pair themselves. An account seen for the first time starts from its
    first letter, so its history is paired over its first passes. No transaction of its own:
    pairing twice stores nothing twice, so a failure between the steps costs only a repeat."""
    watermark = (
        PairingProgress.objects.filter(account_id=account_id)
        .values_list("last_message_id", flat=True)
        .first()
    ) or 0
    newest = Message.objects.aggregate(newest=Max("pk"))["newest"] or 0
    answers = [
        Letter(*row)
        for row in _letters()
        # The letters since the watermark are a short range of the primary key: read that range.
        # The account is compared as `account_id + 0` and the type is left to pair_answers, so
        # no other index matches: with statistics older than the newest letters, PostgreSQL
        # otherwise took every letter of the account from inbox_message_unique_new_msg_id (or
        # walked all of inbox_message_search_recent) to intersect with the range (170 ms).
        .alias(owner=F("account_id") + 0)
        .filter(
            owner=account_id,
            is_sender=True,
            pk__gt=watermark,
            pk__lte=newest,
        )
        .order_by("pk")[:PASS_BATCH]
    ]
    paired = pair_answers(answers)
    watermark = answers[-1].pk if len(answers) == PASS_BATCH else newest
    _save_watermarks([account_id], watermark)
    return paired


def _save_watermarks(account_ids: list[int], watermark: int) -> None:
    """Insert or update the accounts' progress rows, in one statement."""
    PairingProgress.objects.bulk_create(
        [PairingProgress(account_id=pk, last_message_id=watermark) for pk in account_ids],
        update_conflicts=True,
        unique_fields=["account"],
        update_fields=["last_message_id"],
    )


def rebuild(
    account_ids: list[int] | None = None, advance: Callable[[int], None] = lambda n: None
) -> int:
    """Make the pairs of these accounts (all when None) again from their letters, in one
    transaction, and set their watermarks to the newest letter; returns how many pairs there
    are. `advance(n)` hears of every n letters read (a progress bar)."""
    with transaction.atomic():
        newest = Message.objects.aggregate(newest=Max("pk"))["newest"] or 0
        pairs = QAPair.objects.all()
        letters = _letters().filter(pk__lte=newest)
        if account_ids is not None:
            pairs = pairs.filter(account_id__in=account_ids)
            letters = letters.filter(account_id__in=account_ids)
        pairs.delete()
        _insert(_pairs_of(_counted(letters.order_by(*THREAD_ORDER).iterator(5000), advance)))
        if account_ids is None:
            account_ids = list(Account.objects.values_list("pk", flat=True))
        _save_watermarks(account_ids, newest)
        count = pairs.count()
    if connection.vendor == "postgresql":
        # A table refilled at once: without fresh statistics the planner expects a few rows per
        # account and sorts all of an account's pairs for the ranking window instead of reading
        # the newest from suggestions_qapair_recent (150 ms instead of 1 ms at 76,000 pairs).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE suggestions_qapair")
    return count


def rebuild_size(account_ids: list[int] | None = None) -> int:
    """How many letters rebuild() reads (for a progress bar's total)."""
    letters = _letters()
    if account_ids is not None:
        letters = letters.filter(account_id__in=account_ids)
    return letters.count()


def _counted(rows: Iterable, advance: Callable[[int], None], every: int = 5000) -> Iterator:
    count = 0
    for row in rows:
        yield row
        count += 1
        if count == every:
            advance(count)
            count = 0
    if count:
        advance(count)
