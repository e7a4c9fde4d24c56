"""Suggested replies for an open conversation: the answers the team gave to the account's most
similar earlier questions, and the canned replies that fit, computed here from the account's own
pairs (no outside service).

The question is the viewer's text letters since the account's last letter. It is compared with
the questions of the account's newest RECENT_PAIRS pairs (one index range, whatever the size of
the history: questions that recur are asked again within it; kept a while by each process), the
best few candidates are read whole, and their answers ranked (ranking.best_answers). At most five
queries, however much history there is.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.db.models import Q

from inbox.models import THREAD_SEQ, CannedReply, Message, Session
from inbox.suggestions import ranking
from inbox.suggestions.models import QAPair
from inbox.suggestions.pairing import QUESTION_LETTERS

SUGGESTIONS = 3
CANNED_SUGGESTIONS = 2
RECENT_PAIRS = 2000
# Candidates read whole before ranking their answers: enough for SUGGESTIONS distinct answers
# when the most similar questions were mostly answered alike.
CANDIDATES = 30
# The composer's `/` menu offers at most as many (inbox.views.CANNED_LIMIT).
CANNED_LIMIT = 500
# A letter read back past this many of the account's own letters and notes stops the search
# for the viewer's question.
LOOK_BACK_LETTERS = 10


def waiting_question(session: Session) -> str:
    """The viewer's text letters since the account last wrote (the newest QUESTION_LETTERS,
    joined); empty when the newest letter is the account's. One query."""
    newest_first = (
        Message.objects.filter(session=session, kind=Message.Kind.LETTER)
        .order_by("-created_at", THREAD_SEQ.desc(), "-pk")
        .values_list("is_sender", "msg_type", "content")[:LOOK_BACK_LETTERS]
    )
    texts: list[str] = []
    for is_sender, msg_type, content in newest_first:
        if is_sender or len(texts) == QUESTION_LETTERS:
            break
        if msg_type == Message.Type.TEXT and content.strip():
            texts.append(content)
    return ranking.normalize(" ".join(reversed(texts)))


def suggestions_for(session: Session) -> list[ranking.Suggestion]:
    """Up to SUGGESTIONS earlier answers and CANNED_SUGGESTIONS canned replies for the question
    the viewer is waiting on, best first; none when nobody is waiting."""
    query = ranking.tokens(waiting_question(session))
    if not query:
        return []
    index = _question_index(session.account_id)
    suggestions = ranking.suggest(query, index, _answered, limit=SUGGESTIONS, candidates=CANDIDATES)
    return suggestions + _matching_canned(session, index, query, suggestions)


# An account's index of recent questions is kept by each process for a while (INDEX_SECONDS), or
# until the account has a newer pair: building it reads and weighs every token of RECENT_PAIRS
# questions, tens of milliseconds, while checking for a newer pair is one index probe. At most
# INDEXED_ACCOUNTS indexes are kept (a few MB each), the least recently used dropped first.
INDEX_SECONDS = 60
INDEXED_ACCOUNTS = 16
_indexes: OrderedDict[int, tuple[float, int | None, ranking.QuestionIndex]] = OrderedDict()
_indexes_lock = threading.Lock()


def _question_index(account_id: int) -> ranking.QuestionIndex:
    recent = QAPair.objects.filter(account_id=account_id).order_by("-answered_at", "-pk")
    newest = recent.values_list("pk", flat=True).first()
    now = time.monotonic()
    with _indexes_lock:
        kept = _indexes.get(account_id)
        if kept is not None and kept[1] == newest and now - kept[0] < INDEX_SECONDS:
            _indexes.move_to_end(account_id)
            return kept[2]
    index = ranking.QuestionIndex(recent.values_list("pk", "question_tokens")[:RECENT_PAIRS])
    with _indexes_lock:
        _indexes[account_id] = (now, newest, index)
        _indexes.move_to_end(account_id)
        while len(_indexes) > INDEXED_ACCOUNTS:
            _indexes.popitem(last=False)
    return index


def forget_indexes() -> None:
    """Drop every kept index (tests that change pairs in place)."""
    with _indexes_lock:
        _indexes.clear()


def _answered(pks: list[int]) -> dict[int, ranking.Answered]:
    return {
        pk: ranking.Answered(pk, question, answer, answered_at)
        for pk, question, answer, answered_at in QAPair.objects.filter(pk__in=pks).values_list(
            "pk", "question", "answer", "answered_at"
        )
    }


def _matching_canned(
    session: Session,
    index: ranking.QuestionIndex,
    query: list[str],
    taken: list[ranking.Suggestion],
) -> list[ranking.Suggestion]:
    """The canned replies of the account (and the global ones) whose title and text are like
    the question, best first; none that repeats an answer already suggested."""
    offered = {ranking.normalize(suggestion.text).casefold() for suggestion in taken}
    scored = []
    for title, text in CannedReply.objects.filter(
        Q(account=session.account_id) | Q(account__isnull=True)
    ).values_list("title", "text")[:CANNED_LIMIT]:
        if ranking.normalize(text).casefold() in offered:
            continue
        similarity = index.similarity(query, ranking.tokens(f"{title} {text}"))
        if similarity >= ranking.MIN_SIMILARITY:
            scored.append(ranking.Suggestion(text=text, canned_title=title, score=similarity))
    scored.sort(key=lambda suggestion: -suggestion.score)
    return scored[:CANNED_SUGGESTIONS]
