"""Peer nicknames from the upstream's contactList, so the inbox can show "王小明" rather than
v2_0600…@finder. Best effort: a lookup that fails is logged and the session keeps its user name."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.utils import timezone

from accounts.client import VideosApiError
from inbox.models import Session
from inbox.payloads import clean_text
from inbox.services import my_identity
from inbox.sync import is_channels_name

log = logging.getLogger(__name__)

NICKNAME_LENGTH = Session._meta.get_field("peer_nickname").max_length


def fill_peer_nicknames(session_ids: Iterable[int]) -> int:
    """Look up each distinct peer of these sessions that has no nickname yet, one contactList
    call per peer, and store what the upstream knows. Returns how many sessions were named."""
    sessions = (
        Session.objects.filter(pk__in=list(session_ids), peer_nickname="")
        .exclude(peer_username="")
        .select_related("account")
        .order_by("pk")
    )
    peers: dict[tuple[int, str], Session] = {}
    for session in sessions:
        peers.setdefault((session.account_id, session.peer_username), session)
    clients = {}
    named = 0
    try:
        for (account_id, peer), session in peers.items():
            account = session.account
            # contactList asks as a Channels identity (myRoleType 3), as replies are sent.
            me = my_identity(session)
            if not is_channels_name(me):
                log.info("account %s: no own Channels name yet; cannot look up peers", account_id)
                continue
            if account_id not in clients:
                clients[account_id] = account.client()
            try:
                entries = clients[account_id].contact_list(my_username=me, query=peer)
            except VideosApiError as exc:
                log.warning("account %s: contactList for a peer failed: %s", account_id, exc)
                continue
            nickname = _nickname_of(peer, entries)
            if nickname:
                named += Session.objects.filter(
                    account_id=account_id, peer_username=peer, peer_nickname=""
                ).update(peer_nickname=nickname, updated_at=timezone.now())
    finally:
        for client in clients.values():
            client.close()
    return named


def _nickname_of(peer: str, entries: list[dict]) -> str:
    for entry in entries:
        nickname = entry.get("nickname")
        if entry.get("username") == peer and isinstance(nickname, str):
            # As sync cleans every string it stores: a NUL would make PostgreSQL refuse the row.
            return clean_text(nickname).strip()[:NICKNAME_LENGTH]
    return ""
