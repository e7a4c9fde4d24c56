"""/healthz: whether this deployment can do its job, for load balancers and monitors.

Reports booleans, one age and the accounts that are down by id and name, never a host, URL or
error text (they can carry credentials)."""

from __future__ import annotations

import logging

from django.db import connection
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Account
from inbox.celery import app

log = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503. `last_sync_age_seconds` is how long
    ago any account last synced successfully (null before the first): a monitor should alert when
    it grows far past the poll interval, which means no worker or no beat is running.

    `accounts_down` lists the accounts whose device is offline or gone ({id, name}, oldest outage
    first; null when the database is down). They do not make the answer 503: the deployment is
    fine, a phone is not, and a load balancer must not take the web tier out for it."""
    database = _database_ok()
    broker = _broker_ok()
    body = {
        "status": "ok" if database and broker else "unavailable",
        "database": database,
        "broker": broker,
        "last_sync_age_seconds": _last_sync_age() if database else None,
        "accounts_down": _accounts_down() if database else None,
    }
    return JsonResponse(body, status=200 if database and broker else 503)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any failure means "down"; what it was goes to the log only
        log.warning("healthz: database check failed", exc_info=True)
        return False
    return True


def _broker_ok() -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception:
        log.warning("healthz: broker check failed", exc_info=True)
        return False
    return True


def _accounts_down() -> list[dict]:
    return [
        {"id": pk, "name": name}
        for pk, name in Account.objects.filter(outage_since__isnull=False)
        .order_by("outage_since", "pk")
        .values_list("pk", "name")
    ]


def _last_sync_age() -> int | None:
    newest = Account.objects.aggregate(newest=Max("last_success_at"))["newest"]
    if newest is None:
        return None
    return max(0, int((timezone.now() - newest).total_seconds()))
