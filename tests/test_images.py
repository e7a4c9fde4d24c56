"""Pictures of image letters: one pending download per letter, on its own queue, bounded in time,
and a URL from the upstream that cannot be stored becomes a visible error, not a spinner."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from inbox import images, tasks
from inbox.celery import app
from inbox.models import Message

DOWNLOAD = "/message/downloadImage"


@pytest.fixture
def image(synced) -> Message:
    return Message.objects.filter(msg_type=Message.Type.IMAGE).order_by("pk").first()


@pytest.fixture
def queued(monkeypatch) -> list:
    """fetch_image_url tasks queued, instead of run."""
    calls: list = []
    monkeypatch.setattr(tasks.fetch_image_url, "delay", lambda *args: calls.append(args))
    return calls


def load(client, image: Message, captured):
    with captured(execute=True):
        return client.post(reverse("inbox:load_image", args=[image.pk]), HTTP_HX_REQUEST="true")


# --- one download at a time per letter -----------------------------------------------------


def test_a_second_click_while_a_download_is_pending_queues_nothing(
    member_client, image, queued, django_capture_on_commit_callbacks
):
    first = load(member_client, image, django_capture_on_commit_callbacks)
    second = load(member_client, image, django_capture_on_commit_callbacks)
    load(member_client, image, django_capture_on_commit_callbacks)

    assert queued == [(image.pk,)]
    # Both clicks get the waiting card that polls for the picture.
    for response in (first, second):
        assert response.status_code == 200
        assert "Loading the image" in response.content.decode()


def test_a_finished_download_releases_the_letter_for_a_retry(
    member_client, image, sandbox, django_capture_on_commit_callbacks
):
    sandbox.inject("ret_500", path=DOWNLOAD, times=3)
    load(member_client, image, django_capture_on_commit_callbacks)
    image.refresh_from_db()
    assert image.image_error and image.image_fetch_started_at is None

    load(member_client, image, django_capture_on_commit_callbacks)  # "Try again"

    image.refresh_from_db()
    assert image.image_url and not image.image_error
    assert len(sandbox.calls_to(DOWNLOAD)) == 4


def test_a_claim_whose_task_was_lost_expires(
    image, queued, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert images.request_image(image)
        assert not images.request_image(image)
    Message.objects.filter(pk=image.pk).update(
        image_fetch_started_at=timezone.now()
        - timedelta(seconds=settings.IMAGE_FETCH_CLAIM_SECONDS + 1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert images.request_image(image)
    assert len(queued) == 2


# --- bounded in time, on its own queue -------------------------------------------------------


def test_a_hanging_upstream_releases_the_download_within_its_bound(image, sandbox, settings):
    settings.IMAGE_FETCH_SECONDS = 1.5
    settings.IMAGE_FETCH_READ_TIMEOUT = 1
    sandbox.inject("slow", path=DOWNLOAD, seconds=10, times=10)
    images.request_image(image)
    started = time.monotonic()

    images.fetch_image_url(image.pk)

    assert time.monotonic() - started < 3
    image.refresh_from_db()
    assert image.image_fetch_started_at is None
    assert image.image_error  # the card says why instead of spinning
    # Short timeouts, no retries: at most one request per size in the time allowed.
    assert len(sandbox.calls_to(DOWNLOAD)) <= 2


def test_image_downloads_have_their_own_queue_that_every_default_worker_consumes():
    route = app.amqp.router.route({}, "inbox.tasks.fetch_image_url")
    assert route["queue"].name == "images"
    assert app.amqp.router.route({}, "inbox.tasks.send_reply")["queue"].name == "celery"
    # A worker started without -Q (the demo's) consumes every queue in CELERY_TASK_QUEUES.
    assert "images" in app.amqp.queues


def test_the_image_task_ends_well_inside_the_lease_and_the_visibility_timeout():
    task = tasks.fetch_image_url
    assert django_settings.IMAGE_FETCH_SECONDS < task.soft_time_limit < task.time_limit
    assert task.time_limit < django_settings.IMAGE_FETCH_CLAIM_SECONDS
    assert task.time_limit < django_settings.SYNC_LEASE_SECONDS
    assert task.time_limit < django_settings.CELERY_TASK_TIME_LIMIT * 3  # Redis visibility


# --- what the upstream answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "file_url, words",
    [
        pytest.param("http://cdn.example/" + "a" * 3000 + ".png", "too long", id="3000-chars"),
        pytest.param("http://cdn.example/a\x00b.png", "not a valid", id="nul"),
        pytest.param("http://cdn.example/a b.png", "not a valid", id="space"),
        pytest.param("http://[::1/a.png", "not a valid", id="broken-host"),
    ],
)
def test_a_file_url_that_cannot_be_stored_is_a_visible_error_not_a_spinner(
    member_client, image, sandbox, django_capture_on_commit_callbacks, file_url, words
):
    sandbox.inject("answer", path=DOWNLOAD, data={"fileUrl": file_url}, times=3)

    load(member_client, image, django_capture_on_commit_callbacks)

    image.refresh_from_db()
    assert image.image_url == ""
    assert words in image.image_error
    assert image.image_fetch_started_at is None
    card = member_client.get(reverse("inbox:image", args=[image.pk]), HTTP_HX_REQUEST="true")
    html = card.content.decode()
    assert "could not be loaded" in html
    assert "Loading the image" not in html
    assert "Try again" in html


@pytest.mark.postgres
def test_a_3000_character_file_url_is_refused_before_postgresql_would(
    member_client, image, sandbox, django_capture_on_commit_callbacks
):
    """On PostgreSQL the URL column is varchar(2000): storing the URL raised DataError, the task
    died, and the card span until it gave up."""
    sandbox.inject("answer", path=DOWNLOAD, data={"fileUrl": "https://x/" + "a" * 3000}, times=3)

    load(member_client, image, django_capture_on_commit_callbacks)

    image.refresh_from_db()
    assert "too long" in image.image_error
