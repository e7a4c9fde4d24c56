"""The viewer profile: sessions linked to viewers as sync creates them, the panel beside the thread
(who may see what), viewer notes and labels, and avatars kept on our side."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account
from accounts.sandbox import PEERS
from accounts.sandbox_media import avatar_url
from inbox import tasks
from inbox.labels.models import Label
from inbox.models import Session
from inbox.viewers import avatars, linking, services
from inbox.viewers.models import NOTE_MAX_LENGTH, Viewer, ViewerLabel, ViewerNote, ViewerSession
from tests.conftest import store_items

HX = {"HX-Request": "true"}
WANG = PEERS[1]  # 王小明 in the sandbox's script


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Avatar downloads queued (not run)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.fetch_viewer_avatar, "delay", calls.append)
    return calls


@pytest.fixture
def wang_session(synced: Account) -> Session:
    return Session.objects.get(account=synced, peer_username=WANG.username)


@pytest.fixture
def flagship(db, sandbox_server, make_item) -> Account:
    """A second account, where 王小明 wrote too."""
    account = Account.objects.create(
        name="Flagship", app_id="wx_flagship", token="flagship-token", base_url="http://x"
    )
    store_items(
        account,
        [
            make_item(
                content__msg__FromUserName={"string": WANG.username},
                content__msgSessionId="flagship-wang@findermsg",
            )
        ],
        "flagship-1",
    )
    return account


def panel_url(session: Session) -> str:
    return reverse("inbox:viewer_panel", args=[session.pk])


def note_url(session: Session, note: ViewerNote | None = None, action: str = "") -> str:
    if note is None:
        return reverse("inbox:viewer_add_note", args=[session.pk])
    name = "inbox:viewer_delete_note" if action == "delete" else "inbox:viewer_edit_note"
    return reverse(name, args=[session.pk, note.pk])


# --- linking -------------------------------------------------------------------------------------


def test_sync_links_every_new_session_to_its_viewer(synced):
    sessions = Session.objects.filter(account=synced).exclude(peer_username="")
    assert ViewerSession.objects.count() == sessions.count() > 1
    for session in sessions:
        assert session.viewer_link.viewer.username == session.peer_username


def test_one_viewer_writing_to_two_accounts_is_one_viewer(synced, flagship):
    viewer = Viewer.objects.get(username=WANG.username)
    assert {link.session.account_id for link in viewer.links.all()} == {synced.pk, flagship.pk}


def test_a_page_links_its_new_sessions_in_two_statements(account, make_item):
    items = [make_item() for _ in range(30)]  # seven sessions, seven peers
    account.refresh_from_db(fields=["key_buff"])
    with CaptureQueriesContext(connection) as queries:
        store_items(account, items, "page-1")
    writes = [q["sql"] for q in queries if "viewers_" in q["sql"]]
    assert len(writes) == 2
    assert ViewerSession.objects.count() == 7


def test_rebuild_viewers_links_what_sync_did_not_and_changes_nothing_twice(synced, capsys):
    expected = set(ViewerSession.objects.values_list("session_id", "viewer__username"))
    ViewerSession.objects.all().delete()
    Viewer.objects.all().delete()
    call_command("rebuild_viewers", batch_size=2)
    assert set(ViewerSession.objects.values_list("session_id", "viewer__username")) == expected
    assert f"{len(expected)} session(s) linked" in capsys.readouterr().out
    call_command("rebuild_viewers")
    assert "0 session(s) linked" in capsys.readouterr().out


# --- the panel -----------------------------------------------------------------------------------


def test_panel_shows_the_viewer_and_their_conversation_in_the_other_account(
    member_client, member, wang_session, flagship
):
    flagship.members.add(member)
    other = Session.objects.get(account=flagship)
    response = member_client.get(panel_url(wang_session), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert WANG.username in html and 'data-copy="' + WANG.username in html
    assert "Flagship" in html and other.get_absolute_url() in html
    assert f'hx-get="{other.get_absolute_url()}"' in html
    # Latest activity first: the scripted conversation is from today, the flagship's from 2024.
    assert [s.pk for s in response.context["profile"].conversations] == [wang_session.pk, other.pk]


def test_panel_lists_only_conversations_in_the_users_accounts(
    member_client, wang_session, flagship
):
    response = member_client.get(panel_url(wang_session), headers=HX)
    conversations = response.context["profile"].conversations
    assert [s.pk for s in conversations] == [wang_session.pk]
    assert "Flagship" not in response.content.decode()


def test_panel_of_another_accounts_session_is_404(client, outsider, wang_session):
    client.force_login(outsider)
    assert client.get(panel_url(wang_session), headers=HX).status_code == 404


def test_panel_needs_a_login(client, wang_session):
    response = client.get(panel_url(wang_session), headers=HX)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_panel_without_htmx_goes_back_to_the_thread(member_client, wang_session):
    response = member_client.get(panel_url(wang_session))
    assert response.status_code == 302
    assert response["Location"] == wang_session.get_absolute_url()


def test_panel_rejects_post(member_client, wang_session):
    assert member_client.post(panel_url(wang_session), headers=HX).status_code == 405


def test_panel_shows_first_and_last_letter_times(member_client, wang_session):
    letters = wang_session.messages.filter(kind="letter", is_sender=False).order_by("created_at")
    profile = member_client.get(panel_url(wang_session), headers=HX).context["profile"]
    assert profile.first_letter_at == letters.first().created_at
    assert profile.last_letter_at == letters.last().created_at


def test_panel_runs_a_fixed_number_of_queries(
    member_client, member, wang_session, flagship, queued
):
    Viewer.objects.filter(username=WANG.username).update(avatar="avatars/x.png")
    member_client.get(panel_url(wang_session), headers=HX)  # links and warms up
    with CaptureQueriesContext(connection) as few:
        member_client.get(panel_url(wang_session), headers=HX)
    flagship.members.add(member)
    viewer = Viewer.objects.get(username=WANG.username)
    for number in range(5):
        services.add_note(viewer, member, f"note {number}")
    with CaptureQueriesContext(connection) as many:
        member_client.get(panel_url(wang_session), headers=HX)
    assert len(many) == len(few) <= 7


def test_panel_links_a_session_synced_before_the_viewers_app(member_client, wang_session):
    ViewerSession.objects.all().delete()
    Viewer.objects.all().delete()
    response = member_client.get(panel_url(wang_session), headers=HX)
    assert response.status_code == 200
    assert ViewerSession.objects.filter(session=wang_session).exists()


def test_nickname_and_notes_are_escaped(member_client, member, wang_session):
    Viewer.objects.filter(username=WANG.username).update(nickname="<script>alert(1)</script>")
    viewer = Viewer.objects.get(username=WANG.username)
    services.add_note(viewer, member, '<img src=x onerror="alert(2)">')
    html = member_client.get(panel_url(wang_session), headers=HX).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html


# --- viewer notes -------------------------------------------------------------------------------


def test_adding_a_note_shows_it_with_author_and_time(member_client, member, wang_session):
    response = member_client.post(note_url(wang_session), {"text": "  Prefers 顺丰  "}, headers=HX)
    assert response.status_code == 200
    note = ViewerNote.objects.get()
    assert (note.text, note.author, note.viewer.username) == ("Prefers 顺丰", member, WANG.username)
    html = response.content.decode()
    assert 'id="viewer-notes"' in html and "Prefers 顺丰" in html and "李四" in html


def test_a_note_is_seen_from_the_viewers_conversation_in_another_account(
    client, member, wang_session, flagship
):
    services.add_note(Viewer.objects.get(username=WANG.username), member, "VIP since 2023")
    colleague = get_user_model().objects.create_user("colleague")
    flagship.members.add(colleague)
    client.force_login(colleague)
    other = Session.objects.get(account=flagship)
    assert "VIP since 2023" in client.get(panel_url(other), headers=HX).content.decode()


@pytest.mark.parametrize(
    ("text", "error"),
    [("   ", "the note is empty"), ("x" * (NOTE_MAX_LENGTH + 1), "at most 2000 characters")],
)
def test_a_bad_note_is_refused_with_the_reason(member_client, wang_session, text, error):
    response = member_client.post(note_url(wang_session), {"text": text}, headers=HX)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not ViewerNote.objects.exists()


def test_a_note_cannot_be_written_through_a_session_one_is_not_in(client, outsider, wang_session):
    client.force_login(outsider)
    response = client.post(note_url(wang_session), {"text": "hi"}, headers=HX)
    assert response.status_code == 404
    assert not ViewerNote.objects.exists()


def test_a_note_cannot_be_read_or_changed_through_another_viewers_session(
    member_client, member, synced, wang_session
):
    note = services.add_note(Viewer.objects.get(username=WANG.username), member, "secret")
    other = Session.objects.filter(account=synced).exclude(pk=wang_session.pk).first()
    assert "secret" not in member_client.get(panel_url(other), headers=HX).content.decode()
    response = member_client.post(note_url(other, note), {"text": "changed"}, headers=HX)
    assert response.status_code == 404
    assert member_client.post(note_url(other, note, "delete"), headers=HX).status_code == 404
    note.refresh_from_db()
    assert note.text == "secret"


def test_editing_ones_note_records_who_and_when(member_client, member, wang_session):
    note = services.add_note(Viewer.objects.get(username=WANG.username), member, "first")
    response = member_client.post(note_url(wang_session, note), {"text": "second"}, headers=HX)
    assert response.status_code == 200
    note.refresh_from_db()
    assert (note.text, note.edited_by) == ("second", member)
    assert note.updated_at is not None
    assert "edited" in response.content.decode()


def test_only_the_author_or_a_superuser_changes_a_note(client, member, wang_session):
    note = services.add_note(Viewer.objects.get(username=WANG.username), member, "mine")
    colleague = get_user_model().objects.create_user("colleague")
    wang_session.account.members.add(colleague)
    client.force_login(colleague)
    assert client.post(note_url(wang_session, note), {"text": "x"}, headers=HX).status_code == 403
    assert client.post(note_url(wang_session, note, "delete"), headers=HX).status_code == 403
    admin = get_user_model().objects.create_superuser("boss")
    client.force_login(admin)
    assert client.post(note_url(wang_session, note), {"text": "x"}, headers=HX).status_code == 200
    note.refresh_from_db()
    assert (note.text, note.author, note.edited_by) == ("x", member, admin)
    assert client.post(note_url(wang_session, note, "delete"), headers=HX).status_code == 200
    assert not ViewerNote.objects.exists()


def test_a_refused_edit_keeps_the_note_and_says_why(member_client, member, wang_session):
    note = services.add_note(Viewer.objects.get(username=WANG.username), member, "kept")
    response = member_client.post(note_url(wang_session, note), {"text": ""}, headers=HX)
    assert response.status_code == 400
    assert "the note is empty" in response.content.decode()
    note.refresh_from_db()
    assert note.text == "kept" and note.updated_at is None


def test_note_writes_without_htmx_go_back_to_the_thread(member_client, wang_session):
    response = member_client.post(note_url(wang_session), {"text": "plain form"})
    assert response.status_code == 302
    assert response["Location"] == wang_session.get_absolute_url()
    assert member_client.post(note_url(wang_session), {"text": ""}).status_code == 400


def test_note_urls_reject_get(member_client, wang_session):
    assert member_client.get(note_url(wang_session)).status_code == 405


# --- viewer labels ------------------------------------------------------------------------------


def test_a_label_goes_on_the_viewer_and_comes_off(member_client, wang_session):
    vip = Label.objects.create(name="VIP", colour="red")
    url = reverse("inbox:viewer_change_label", args=[wang_session.pk])
    response = member_client.post(url, {"label": vip.pk}, headers=HX)
    assert response.status_code == 200 and "VIP" in response.content.decode()
    assert ViewerLabel.objects.filter(viewer__username=WANG.username, label=vip).exists()
    member_client.post(url, {"label": vip.pk, "remove": "1"}, headers=HX)
    assert not ViewerLabel.objects.exists()


def test_another_accounts_label_cannot_go_on_the_viewer(member_client, wang_session, outsider):
    theirs = Label.objects.create(name="Theirs", account=Account.objects.get(app_id="wx_other"))
    url = reverse("inbox:viewer_change_label", args=[wang_session.pk])
    response = member_client.post(url, {"label": theirs.pk}, headers=HX)
    assert response.status_code == 400
    assert "cannot be used here" in response.content.decode()
    assert not ViewerLabel.objects.exists()


def test_labels_cannot_be_changed_through_a_session_one_is_not_in(client, outsider, wang_session):
    shared = Label.objects.create(name="Shared")
    client.force_login(outsider)
    url = reverse("inbox:viewer_change_label", args=[wang_session.pk])
    assert client.post(url, {"label": shared.pk}, headers=HX).status_code == 404


# --- avatars -------------------------------------------------------------------------------------


def test_contact_lookup_keeps_the_nickname_and_queues_the_avatar(synced, queued, sandbox_server):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.db.transaction.on_commit", lambda callback: callback())
        from inbox import contacts

        contacts.fill_peer_nicknames(
            Session.objects.filter(account=synced, peer_username=WANG.username).values_list(
                "pk", flat=True
            )
        )
    viewer = Viewer.objects.get(username=WANG.username)
    assert viewer.nickname == WANG.nickname
    assert viewer.avatar_url_seen == avatar_url(sandbox_server.state.base_url, WANG.username)
    assert queued == [viewer.pk]


def test_avatar_is_downloaded_from_the_sandbox_and_served_to_members_only(
    member_client, client, outsider, wang_session, sandbox_server
):
    viewer = Viewer.objects.get(username=WANG.username)
    Viewer.objects.filter(pk=viewer.pk).update(
        avatar_url_seen=avatar_url(sandbox_server.state.base_url, WANG.username)
    )
    assert avatars.fetch_avatar(viewer.pk)
    viewer.refresh_from_db()
    assert viewer.avatar.name.startswith("avatars/") and viewer.avatar.name.endswith(".png")
    assert (viewer.avatar_error, viewer.avatar_requested_at) == ("", None)
    url = reverse("inbox:viewer_avatar", args=[viewer.pk])
    response = member_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert "private" in response["Cache-Control"]
    html = member_client.get(panel_url(wang_session), headers=HX).content.decode()
    assert f"{url}?v={viewer.avatar_version}" in html and sandbox_server.state.base_url not in html
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_a_download_that_is_no_image_is_refused(wang_session, sandbox_server):
    viewer = Viewer.objects.get(username=WANG.username)
    Viewer.objects.filter(pk=viewer.pk).update(
        avatar_url_seen=f"{sandbox_server.state.base_url}/_sandbox/calls"
    )
    assert not avatars.fetch_avatar(viewer.pk)
    viewer.refresh_from_db()
    assert not viewer.avatar and "not a PNG" in viewer.avatar_error
    assert viewer.avatar_fetched_at is not None


def test_a_picture_over_the_cap_is_refused(wang_session, sandbox_server, monkeypatch):
    monkeypatch.setattr(avatars, "AVATAR_MAX_BYTES", 100)
    viewer = Viewer.objects.get(username=WANG.username)
    Viewer.objects.filter(pk=viewer.pk).update(
        avatar_url_seen=avatar_url(sandbox_server.state.base_url, WANG.username)
    )
    assert not avatars.fetch_avatar(viewer.pk)
    viewer.refresh_from_db()
    assert "larger than 100 bytes" in viewer.avatar_error


def test_opening_the_panel_asks_for_the_avatar_once(
    member_client, wang_session, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member_client.get(panel_url(wang_session), headers=HX)
        member_client.get(panel_url(wang_session), headers=HX)
    viewer = Viewer.objects.get(username=WANG.username)
    assert queued == [viewer.pk]


def test_avatar_looked_up_through_contact_list_when_its_address_is_unknown(wang_session, synced):
    Account.objects.filter(pk=synced.pk).update(own_username=wang_session.my_username)
    viewer = Viewer.objects.get(username=WANG.username)
    assert avatars.fetch_avatar(viewer.pk)
    viewer.refresh_from_db()
    assert viewer.nickname == WANG.nickname and viewer.avatar


def test_avatar_of_a_viewer_without_one_is_404(member_client, wang_session):
    viewer = Viewer.objects.get(username=WANG.username)
    assert member_client.get(reverse("inbox:viewer_avatar", args=[viewer.pk])).status_code == 404


def test_linking_on_its_own_makes_viewers_for_a_list_of_sessions(synced):
    ViewerSession.objects.all().delete()
    sessions = list(Session.objects.filter(account=synced))
    assert linking.link_sessions(sessions) == len([s for s in sessions if s.peer_username])
    assert linking.link_sessions(sessions) == 0


# --- the demo -----------------------------------------------------------------------------------


def test_the_demo_has_a_viewer_who_wrote_to_both_of_its_shops(db, sandbox, sandbox_server):
    from accounts.sandbox import DEMO_APP_ID, DEMO_TOKEN, add_sister_account
    from inbox.sync import sync_account
    from inbox.viewers.demo import add_sister_account as register_sister

    sandbox.add_account(DEMO_APP_ID, DEMO_TOKEN)
    add_sister_account(sandbox)
    demo = Account.objects.create(
        name="Sandbox shop", app_id=DEMO_APP_ID, token=DEMO_TOKEN, base_url=sandbox_server.base_url
    )
    agent = get_user_model().objects.create_user("demo-agent")
    demo.members.add(agent)
    sister = register_sister(demo)
    assert register_sister(demo) == sister  # once
    assert list(sister.members.all()) == [agent]
    sync_account(demo)
    sync_account(sister)
    viewer = Viewer.objects.get(username=WANG.username)
    assert {link.session.account for link in viewer.links.all()} == {demo, sister}
    assert register_sister(sister) is None  # only the demo's own shop has a sister


def test_a_big_round_of_contacts_queues_a_few_downloads_and_leaves_the_rest_to_the_panel(
    db, queued, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(avatars, "EAGER_DOWNLOADS", 2)
    answers = {
        f"v2_{n}@finder": [
            {"username": f"v2_{n}@finder", "nickname": f"N{n}", "headUrl": f"http://cdn/{n}.jpg"}
        ]
        for n in range(5)
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert avatars.remember_contacts(answers) == 2
    assert len(queued) == 2
    waiting = Viewer.objects.exclude(pk__in=queued)
    assert waiting.count() == 3 and all(avatars.wants_avatar(viewer) for viewer in waiting)
    assert sorted(Viewer.objects.values_list("nickname", flat=True)) == [f"N{n}" for n in range(5)]
    # The same answers again change nothing and queue nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert avatars.remember_contacts(answers) == 0


@pytest.fixture
def redirecting_server():
    """An HTTP server whose every GET is a redirect to the sandbox's picture."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere.png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_avatar_redirect_is_not_followed(wang_session, redirecting_server):
    viewer = Viewer.objects.get(username=WANG.username)
    Viewer.objects.filter(pk=viewer.pk).update(avatar_url_seen=f"{redirecting_server}/a.png")
    assert not avatars.fetch_avatar(viewer.pk)
    viewer.refresh_from_db()
    assert viewer.avatar_error == "HTTP 302: redirect not followed"
