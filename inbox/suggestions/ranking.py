"""How alike two questions are, and which earlier answers fit a new question best. Pure Python:
the service feeds it an account's recent question -> answer pairs, the evaluation a held-out split.

Questions are compared as bags of tokens: each ASCII word, and each character and each pair of
adjacent characters of Chinese (or other wide) text, the same pieces the search box indexes
(inbox.search). Pairs of characters carry most of the meaning of Chinese (发货, 退款, 尺码) and
survive rephrasing that breaks longer runs (什么时候发货 / 啥时候能发货 share 时候 and 发货); single
characters catch the rest (退钱 / 退款). Tokens are weighted by how rare they are among the
questions compared (inverse document frequency), so 请问, 你好 and 吗 count for little, and
questions are compared by the cosine of their weighted tokens.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

from inbox.search import LATIN_WORD, WIDE_RUN

# Below this a suggestion is more likely noise than help (tuned with evaluate_suggestions: at
# 0.2 only a third of questions worded unlike any before got a suggestion, at 0.1 three in four).
MIN_SIMILARITY = 0.1
# Each further earlier question with the same answer adds this much (log-scaled): an answer the
# team gave many times to questions like this one is the safer suggestion.
REPEAT_BONUS = 0.05
DIGITS = re.compile(r"[0-9]+")
# A question asked in the same words many times stands for its newest few askings (and their
# answers): enough to see which answer the team gives it, without reading them all.
KEYS_PER_QUESTION = 5


def normalize(text: str) -> str:
    """One line, spaces collapsed: how questions and answers are stored and compared."""
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """The distinct tokens of `text`, in order. Numbers (order numbers, prices) are left out:
    they are what differs between two askings of the same question."""
    found = [word for word in LATIN_WORD.findall(text.lower()) if not DIGITS.fullmatch(word)]
    for run in WIDE_RUN.findall(text):
        found.extend(run)
        found.extend(run[i : i + 2] for i in range(len(run) - 1))
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Match:
    similarity: float
    key: int


class QuestionIndex:
    """Earlier questions (`key`, their tokens joined by spaces) to compare a new one with.
    Questions asked in the same words share one entry: they are compared once."""

    def __init__(self, rows: Iterable[tuple[int, str]]):
        keys_by_question: dict[str, list[int]] = {}
        for key, joined in rows:
            keys_by_question.setdefault(joined, []).append(key)
        # One string object per distinct token: an index is kept a while (services), and its
        # thousands of questions share a few thousand tokens.
        canonical: dict[str, str] = {}
        questions = [
            (frozenset(canonical.setdefault(t, t) for t in joined.split()), keys)
            for joined, keys in keys_by_question.items()
        ]
        size = sum(len(keys) for keys in keys_by_question.values())
        frequency = Counter(
            chain.from_iterable(list(question) * len(keys) for question, keys in questions)
        )
        # Inverse document frequency; a token no earlier question has weighs the most.
        self.weights = {token: math.log((size + 1) / (n + 0.5)) for token, n in frequency.items()}
        self.unseen_weight = math.log((size + 1) / 0.5)
        self.questions = [(question, keys, self._norm(question)) for question, keys in questions]

    def weight(self, token: str) -> float:
        return self.weights.get(token, self.unseen_weight)

    def similarity(self, query: Sequence[str], other: Iterable[str]) -> float:
        """Cosine of the weighted token sets of the query and of any other text (a canned
        reply)."""
        weights = self._weights(query)
        other = frozenset(other)
        shared = sum(weights[token] ** 2 for token in weights.keys() & other)
        return shared / (self._norm(weights.keys()) * self._norm(other)) if shared else 0.0

    def most_similar(self, query: Sequence[str], limit: int) -> list[Match]:
        """The `limit` distinct earlier questions most like `query`, most similar first, each
        with the keys of its newest KEYS_PER_QUESTION askings.

        A question's cosine is at most sqrt(shared) / |query| (its norm is at least that of the
        part it shares), so questions are scored in order of what they share, and the scoring
        stops once no further question could enter the `limit` best."""
        weights = self._weights(query)
        if not weights:
            return []
        query_set = frozenset(weights)
        query_norm = self._norm(query_set)
        sharing = []
        for question, keys, norm in self.questions:
            common = query_set & question
            if common:
                sharing.append((sum(weights[token] ** 2 for token in common), norm, keys))
        sharing.sort(key=lambda item: -item[0])
        best: list[tuple[float, int, list[int]]] = []  # a min-heap of (cosine, order, keys)
        for order, (shared, norm, keys) in enumerate(sharing):
            if len(best) == limit and math.sqrt(shared) / query_norm <= best[0][0]:
                break
            cosine = shared / (query_norm * norm)
            if len(best) < limit:
                heapq.heappush(best, (cosine, order, keys))
            elif cosine > best[0][0]:
                heapq.heapreplace(best, (cosine, order, keys))
        ranked = sorted(best, key=lambda item: (-item[0], item[1]))
        return [
            Match(cosine, key) for cosine, _, keys in ranked for key in keys[:KEYS_PER_QUESTION]
        ]

    def _weights(self, query: Sequence[str]) -> dict[str, float]:
        return {token: self.weight(token) for token in query}

    def _norm(self, tokens: Iterable[str]) -> float:
        known, unseen = self.weights, self.unseen_weight
        return math.sqrt(sum(known.get(token, unseen) ** 2 for token in tokens))


@dataclass(frozen=True)
class Answered:
    """An earlier answer and the question it answered, as the ranking sees them."""

    key: int
    question: str
    answer: str
    answered_at: datetime


@dataclass(frozen=True)
class Suggestion:
    text: str
    # The earlier question this answer was given to (shown on hover); empty for a canned reply.
    question: str = ""
    # A canned reply's title; empty for an earlier answer.
    canned_title: str = ""
    score: float = 0.0

    @property
    def canned(self) -> bool:
        return bool(self.canned_title)


def best_answers(
    matches: Sequence[Match], answered: dict[int, Answered], limit: int = 3
) -> list[Suggestion]:
    """The `limit` best distinct answers among the matched earlier questions: each answer scores
    its best question's similarity, plus a little for every other similar question it was given
    to; ties go to the newer answer."""
    groups: dict[str, list[tuple[Match, Answered]]] = {}
    for match in matches:
        pair = answered.get(match.key)
        if pair is None or match.similarity < MIN_SIMILARITY:
            continue
        groups.setdefault(normalize(pair.answer).casefold(), []).append((match, pair))
    scored = []
    for group in groups.values():
        best_match, best_pair = max(group, key=lambda item: item[0].similarity)
        score = best_match.similarity * (1 + REPEAT_BONUS * math.log(len(group)))
        newest = max(pair.answered_at for _, pair in group)
        scored.append((score, newest, best_pair))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [
        Suggestion(text=pair.answer, question=pair.question, score=score)
        for score, _, pair in scored[:limit]
    ]


def suggest(
    query: Sequence[str],
    index: QuestionIndex,
    load: Callable[[list[int]], dict[int, Answered]],
    *,
    limit: int,
    candidates: int,
) -> list[Suggestion]:
    """The best `limit` answers for `query`: the `candidates` most similar earlier questions of
    `index`, read whole through `load` (their keys -> Answered), ranked by best_answers."""
    matches = index.most_similar(query, candidates)
    if not matches:
        return []
    return best_answers(matches, load([match.key for match in matches]), limit)
