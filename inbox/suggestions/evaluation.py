"""How good the suggestions are: for held-out questions, is the answer the team really gave among
the three suggested? Questions are ranked against earlier pairs exactly as the composer's strip
ranks them (ranking.suggest over the newest services.RECENT_PAIRS pairs).

Two sets of conversations (`manage.py evaluate_suggestions`):
- scripted: conversations made with inbox.suggestions.scripted, paired by pairing.pairs_in_thread
  (the code that pairs real letters). Two splits: by time (the newest fifth of the conversations
  held out: the situation of a working desk) and by wording (a third of each topic's wordings
  never appear in the training conversations: every held-out question is phrased differently
  from anything seen before);
- an account's stored pairs, split by time.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from inbox.models import Message
from inbox.suggestions import ranking, scripted, services
from inbox.suggestions.models import QAPair
from inbox.suggestions.pairing import Letter, pairs_in_thread


@dataclass(frozen=True)
class Score:
    name: str
    questions: int
    hit_at_1: int
    hit_at_3: int
    suggested: int  # questions that got at least one suggestion
    baseline_at_3: int  # always the three most common answers of the training pairs

    def line(self) -> str:
        def rate(count: int) -> str:
            return f"{count / self.questions:6.1%}" if self.questions else "   n/a"

        return (
            f"{self.name:<28} questions {self.questions:>5}  hit@1 {rate(self.hit_at_1)}  "
            f"hit@3 {rate(self.hit_at_3)}  any suggestion {rate(self.suggested)}  "
            f"(baseline: 3 most common answers, hit@3 {rate(self.baseline_at_3)})"
        )


def score(name: str, train: Sequence[QAPair], test: Sequence[QAPair]) -> Score:
    """Rank each test pair's question against the training pairs; count the real answers found."""
    recent = sorted(train, key=lambda pair: pair.answered_at, reverse=True)[: services.RECENT_PAIRS]
    keyed = {
        key: ranking.Answered(key, pair.question, pair.answer, pair.answered_at)
        for key, pair in enumerate(recent)
    }
    index = ranking.QuestionIndex((key, pair.question_tokens) for key, pair in enumerate(recent))
    common = [
        answer
        for answer, _ in Counter(_key(pair.answer) for pair in recent).most_common(
            services.SUGGESTIONS
        )
    ]
    hit_1 = hit_3 = suggested = baseline = 0
    for pair in test:
        suggestions = ranking.suggest(
            pair.question_tokens.split(),
            index,
            lambda keys: {key: keyed[key] for key in keys},
            limit=services.SUGGESTIONS,
            candidates=services.CANDIDATES,
        )
        real = _key(pair.answer)
        offered = [_key(suggestion.text) for suggestion in suggestions]
        hit_1 += offered[:1] == [real]
        hit_3 += real in offered
        suggested += bool(offered)
        baseline += real in common
    return Score(name, len(test), hit_1, hit_3, suggested, baseline)


def _key(answer: str) -> str:
    return ranking.normalize(answer).casefold()


def scripted_pairs(
    conversations: int, seed: int, questions: dict[str, list[int]] | None = None
) -> list[QAPair]:
    """Pairs of `conversations` scripted conversations, one a minute, each in its own session."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    pairs: list[QAPair] = []
    key = 0
    for number in range(conversations):
        exchange = scripted.exchange(rng, questions)
        moment = start + timedelta(minutes=number)
        thread = []
        for is_sender, text in [(False, text) for text in exchange.letters] + [
            (True, exchange.answer)
        ]:
            key += 1
            thread.append(Letter(key, 0, number, is_sender, Message.Type.TEXT, text, moment))
        pairs.extend(pairs_in_thread(thread))
    return pairs


def scripted_scores(conversations: int = 2000, seed: int = 7) -> list[Score]:
    pairs = scripted_pairs(conversations, seed)
    cut = len(pairs) * 4 // 5
    by_time = score("scripted, newest 20% held out", pairs[:cut], pairs[cut:])

    seen = {
        topic.name: [i for i in range(len(topic.questions)) if i % 3 != 2]
        for topic in scripted.TOPICS
    }
    unseen = {
        topic.name: [i for i in range(len(topic.questions)) if i % 3 == 2]
        for topic in scripted.TOPICS
    }
    train = scripted_pairs(conversations * 4 // 5, seed, seen)
    test = scripted_pairs(conversations // 5, seed + 1, unseen)
    by_wording = score("scripted, unseen wordings", train, test)
    return [by_time, by_wording]


def account_score(account_id: int) -> Score:
    pairs = list(QAPair.objects.filter(account_id=account_id).order_by("answered_at", "pk"))
    cut = len(pairs) * 4 // 5
    return score(f"account {account_id}, newest 20%", pairs[:cut], pairs[cut:])
