"""What suggested replies are made of: the team's earlier answers, each with the viewer's question
it answered, and how far the pairing of an account's synced letters has come."""

from __future__ import annotations

from django.db import models

from accounts.models import Account
from inbox.models import Message

# A question is matched on its beginning: long letters ramble, and a bounded row keeps the
# ranking's read of an account's recent pairs small.
QUESTION_LENGTH = 500


class QAPair(models.Model):
    """One answer the account sent (from here or from the phone) and the viewer's text letters
    it answered: those since the account's previous letter in the session, joined."""

    # No single-column index: suggestions_qapair_recent starts with the account.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    question = models.CharField(max_length=QUESTION_LENGTH)
    # ranking.tokens(question), space-separated: read with the row, never tokenized at request time.
    question_tokens = models.TextField()
    answer = models.TextField()
    # The newest letter of the question; the pair goes when it does.
    question_message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    answer_message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="+")
    answered_at = models.DateTimeField()

    class Meta:
        indexes = [
            # ranking window: an account's newest pairs (services.suggestions_for).
            models.Index(
                fields=["account", "-answered_at", "-id"], name="suggestions_qapair_recent"
            ),
        ]

    def __str__(self) -> str:
        return self.question[:60]


class PairingProgress(models.Model):
    """The newest message id of the account whose synced answers are paired (pairing.py)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="+")
    last_message_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.last_message_id}"
