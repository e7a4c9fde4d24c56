"""A few labels on the demo's conversations (inbox/demo_history.py calls this once, on the first
start), put on through the service so the threads show who added them."""

from __future__ import annotations

import random

from accounts.models import Account
from inbox.labels import services
from inbox.labels.models import Label
from inbox.models import Session

# (name, colour, shared by every account, share of the conversations that carry it)
DEMO_LABELS = [
    ("退款", "red", True, 0.25),
    ("VIP", "purple", True, 0.15),
    ("物流", "teal", True, 0.3),
    ("投诉", "orange", False, 0.1),
]


def label_demo_sessions(account: Account, agents: list, *, seed: int = 11) -> None:
    rng = random.Random(seed)
    sessions = list(Session.objects.filter(account=account).order_by("pk"))
    if not sessions or not agents:
        return
    for name, colour, shared, share in DEMO_LABELS:
        label, _ = Label.objects.get_or_create(
            name=name, account=None if shared else account, defaults={"colour": colour}
        )
        chosen = [session for session in sessions if rng.random() < share]
        if chosen:
            services.add_label(rng.choice(agents), chosen, label)
