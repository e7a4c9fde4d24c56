"""The demo's second shop, so its first run shows a viewer who wrote to two accounts.

The demo's sandbox serves it (accounts.sandbox.add_sister_account: two letters from 王小明, who
also writes to the demo's first shop); this registers it here with the same members, and the
worker syncs it like any account. Dev tooling: imported only by inbox.demo_history.
"""

from __future__ import annotations

from accounts.models import Account
from accounts.sandbox import DEMO_APP_ID, DEMO_SISTER_APP_ID, DEMO_SISTER_TOKEN

SISTER_NAME = "沙盒旗舰店 Sandbox flagship"


def add_sister_account(account: Account) -> Account | None:
    """Register the sister shop beside the demo's `account` (on the same sandbox), once; any
    other account gets none. Returns the sister account."""
    if account.app_id != DEMO_APP_ID:
        return None
    sister, _ = Account.objects.get_or_create(
        app_id=DEMO_SISTER_APP_ID,
        defaults={"name": SISTER_NAME, "base_url": account.base_url, "token": DEMO_SISTER_TOKEN},
    )
    sister.members.add(*account.members.all())
    return sister
