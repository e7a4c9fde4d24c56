"""The audit trail: `record()` is the one way security-relevant changes are written down.

Callers: account admin (token, base URL, app id, members, cursor reset, create, delete),
`add_account`, `rotate_encryption_key`, and the sign-in lockout reset. Details are small JSON
facts (old and new base URL, who was added); a secret is never one of them.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Account, AuditEvent

Action = AuditEvent.Action

# Detail keys that would carry a secret; refused so a careless caller fails loudly in tests
# instead of writing a token into the trail.
FORBIDDEN_DETAILS = frozenset({"token", "password", "secret", "key"})


def record(actor, action: str, account: Account | None = None, **details: Any) -> AuditEvent:
    """Write one audit event. `actor` is the user who acted, or None for a command run from a
    shell (pass `via="command name"` then); `details` must be JSON-serialisable."""
    if forbidden := FORBIDDEN_DETAILS.intersection(details):
        raise ValueError(f"audit details must not carry secrets: {sorted(forbidden)}")
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_name=actor.get_username() if is_user else "",
        action=Action(action),
        account=account,
        account_label=str(account) if account is not None else "",
        details=details,
    )


def members_change(before: set[str], after: set[str]) -> dict[str, list[str]]:
    """The user names added and removed, for a MEMBERS_CHANGED event."""
    return {"added": sorted(after - before), "removed": sorted(before - after)}
