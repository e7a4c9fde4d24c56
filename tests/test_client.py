"""accounts.client.VideosApiClient against the sandbox upstream, over real HTTP."""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.client import (
    REDACTED,
    UpstreamBadResponse,
    UpstreamRedirected,
    UpstreamRejected,
    UpstreamUnavailable,
    VideosApiClient,
)
from accounts.sandbox import EXAMPLE_BYTES, EXAMPLE_KEY_BUFF
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN

SYNC = "/finder/syncPrivateLetterMsg"


@pytest.fixture
def client(sandbox_server, sandbox, settings):
    settings.VIDEOSAPI_RETRIES = 2
    with VideosApiClient(
        base_url=sandbox_server.base_url, token=SANDBOX_TOKEN, app_id=SANDBOX_APP_ID
    ) as client:
        yield client


def client_with(sandbox_server, **options) -> VideosApiClient:
    return VideosApiClient(
        **{
            "base_url": sandbox_server.base_url,
            "token": SANDBOX_TOKEN,
            "app_id": SANDBOX_APP_ID,
            **options,
        }
    )


def assert_no_token(*texts: object, token: str = SANDBOX_TOKEN) -> None:
    for text in texts:
        assert token not in str(text)
        assert token not in repr(text)


# --- the happy path --------------------------------------------------------------------------


def test_first_sync_returns_the_example_page_exactly(client, sandbox, example_response):
    data = client.sync_private_letters("")

    assert data == example_response["data"]
    assert [item["content"]["msg"]["NewMsgId"] for item in data["list"]][0] == 5871873953492479000


def test_every_call_is_a_post_with_the_token_header_and_app_id_in_the_body(client, sandbox):
    client.sync_private_letters("")
    client.sync_private_letters(EXAMPLE_KEY_BUFF)

    calls = sandbox.calls_to(SYNC)
    assert [call["body"] for call in calls] == [
        {"appId": SANDBOX_APP_ID, "keyBuff": ""},
        {"appId": SANDBOX_APP_ID, "keyBuff": EXAMPLE_KEY_BUFF},
    ]
    assert all(call["token_sent"] for call in calls)
    assert calls[0]["path"] == "/finder/v2/api/finder/syncPrivateLetterMsg"


def test_the_sandbox_only_answers_with_the_right_token(client, sandbox_server, sandbox):
    with (
        client_with(sandbox_server, token="someone-elses-token") as wrong,
        pytest.raises(UpstreamRejected) as rejected,
    ):
        wrong.sync_private_letters("")

    assert rejected.value.token_rejected
    assert client.sync_private_letters("")["keyBuff"] == EXAMPLE_KEY_BUFF


def test_64_bit_ids_above_two_to_the_63_survive_json_decoding(client, sandbox):
    sandbox.add_letter(SANDBOX_APP_ID, "top", new_msg_id=2**64 - 1)
    sandbox.add_letter(SANDBOX_APP_ID, "middle", new_msg_id=2**63 + 1)
    key_buff, ids = EXAMPLE_KEY_BUFF, []
    while (data := client.sync_private_letters(key_buff))["list"]:
        ids += [item["content"]["msg"]["NewMsgId"] for item in data["list"]]
        key_buff = data["keyBuff"]

    assert ids[-2:] == [2**64 - 1, 2**63 + 1]
    assert all(type(new_msg_id) is int for new_msg_id in ids)


def test_a_sent_letter_returns_its_new_msg_id(client, sandbox):
    new_msg_id = client.post_private_letter(
        content="您好",
        to_username="v2_peer@finder",
        my_username="v2_me@finder",
        msg_session_id="s@findermsg",
    )

    echoed = sandbox.accounts[SANDBOX_APP_ID].letters[-1]
    assert echoed["content"]["msg"]["NewMsgId"] == new_msg_id
    assert echoed["content"]["isSender"] == 1
    assert sandbox.calls_to("/finder/postPrivateLetter")[0]["body"] == {
        "appId": SANDBOX_APP_ID,
        "content": "您好",
        "toUserName": "v2_peer@finder",
        "myUserName": "v2_me@finder",
        "msgSessionId": "s@findermsg",
    }


# --- the envelope ----------------------------------------------------------------------------


def test_ret_500_raises_upstream_rejected_with_the_services_message(client, sandbox):
    sandbox.inject("ret_500")

    with pytest.raises(UpstreamRejected) as rejected:
        client.sync_private_letters("")

    error = rejected.value
    assert (error.ret, error.msg) == (500, "系统繁忙，请稍后再试")
    assert str(error) == "ret=500: 系统繁忙，请稍后再试"
    assert not error.token_rejected
    assert not error.device_unavailable
    assert not error.needs_operator
    assert len(sandbox.calls_to(SYNC)) == 1


def test_an_expired_token_is_flagged_for_an_operator(client, sandbox):
    sandbox.inject("token_expired")

    with pytest.raises(UpstreamRejected) as rejected:
        client.sync_private_letters("")

    assert rejected.value.token_rejected
    assert rejected.value.needs_operator


def test_a_missing_token_header_is_flagged_as_a_token_problem(sandbox_server, sandbox):
    with (
        client_with(sandbox_server, token="") as client,
        pytest.raises(UpstreamRejected) as rejected,
    ):
        client.sync_private_letters("")

    assert rejected.value.msg == "header:VideosApi-token 不可为空"
    assert rejected.value.token_rejected


def test_an_offline_device_is_flagged_with_the_detail_in_the_message(client, sandbox):
    sandbox.inject("offline")

    with pytest.raises(UpstreamRejected) as rejected:
        client.sync_private_letters("")

    assert rejected.value.device_unavailable
    assert rejected.value.needs_operator
    assert not rejected.value.token_rejected
    assert str(rejected.value) == "ret=500: 发送消息失败 (微信已离线)"
    assert rejected.value.data == {"code": "-1", "msg": "微信已离线"}


def test_an_unknown_app_id_is_flagged_as_an_unavailable_device(sandbox_server, sandbox):
    with (
        client_with(sandbox_server, app_id="wx_nobody") as client,
        pytest.raises(UpstreamRejected) as rejected,
    ):
        client.sync_private_letters("")

    assert rejected.value.device_unavailable
    assert "设备不存在" in str(rejected.value)


def test_a_response_that_is_not_json_raises_bad_response_without_retrying(client, sandbox):
    sandbox.inject("invalid_json")

    with pytest.raises(UpstreamBadResponse, match="not JSON"):
        client.sync_private_letters("")

    assert len(sandbox.calls_to(SYNC)) == 1


def test_a_response_larger_than_the_limit_is_refused(client, sandbox, settings):
    settings.VIDEOSAPI_MAX_RESPONSE_BYTES = len(EXAMPLE_BYTES) - 1

    with pytest.raises(UpstreamBadResponse, match="larger than"):
        client.sync_private_letters("")


@pytest.fixture
def raw_upstream():
    """An upstream answering every POST with `serve.body`: bodies the sandbox, which always
    speaks proper JSON, cannot produce."""

    class Serve(BaseHTTPRequestHandler):
        body = b""
        headers_seen: list[dict[str, str]] = []

        def do_POST(self) -> None:
            self.headers_seen.append(dict(self.headers))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)

        def log_message(self, *args) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = VideosApiClient(
        base_url=f"http://127.0.0.1:{server.server_address[1]}",
        token=SANDBOX_TOKEN,
        app_id=SANDBOX_APP_ID,
    )
    yield client, Serve
    client.close()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"ret": 200, "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"ret": 200, "data": {"list": [{"NewMsgId": ' + b"9" * 5000 + b"}]}}",
        b'{"ret": 200, "data": {"list": []',
        b"\xff\xfe{}",
    ],
    ids=["nested-100k-deep", "5000-digit-number", "truncated", "not-utf8"],
)
def test_a_body_json_cannot_decode_raises_bad_response(raw_upstream, body):
    client, serve = raw_upstream
    serve.body = body

    with pytest.raises(UpstreamBadResponse, match="not JSON"):
        client.sync_private_letters("")


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"ok"', b'{"msg": "no ret"}', b"null"],
    ids=["array", "string", "no-ret", "null"],
)
def test_json_that_is_not_an_envelope_raises_bad_response(raw_upstream, body):
    client, serve = raw_upstream
    serve.body = body

    with pytest.raises(UpstreamBadResponse, match="envelope"):
        client.sync_private_letters("")


def test_a_ret_that_is_not_the_number_200_is_a_rejection(raw_upstream):
    client, serve = raw_upstream
    serve.body = '{"ret": "200", "msg": "操作成功", "data": {}}'.encode()

    with pytest.raises(UpstreamRejected) as rejected:
        client.sync_private_letters("")

    assert rejected.value.ret == "200"


# --- transport failures ----------------------------------------------------------------------


def test_a_5xx_is_retried_and_the_retry_answers(client, sandbox, example_response):
    sandbox.inject("http_502")

    assert client.sync_private_letters("") == example_response["data"]
    assert len(sandbox.calls_to(SYNC)) == 2


def test_5xx_beyond_the_retries_raises_upstream_unavailable(client, sandbox):
    sandbox.inject("http_500", times=3)

    with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
        client.sync_private_letters("")

    # One try and two retries (tests.settings.VIDEOSAPI_RETRIES), no more.
    assert len(sandbox.calls_to(SYNC)) == 3


def test_a_send_is_not_repeated_after_a_5xx(client, sandbox):
    sandbox.inject("http_500", path="/finder/postPrivateLetter", times=3)

    with pytest.raises(UpstreamUnavailable):
        client.post_private_letter(
            content="hi",
            to_username="v2_p@finder",
            my_username="v2_m@finder",
            msg_session_id="s@findermsg",
        )

    assert len(sandbox.calls_to("/finder/postPrivateLetter")) == 1


def test_a_response_slower_than_the_read_timeout_raises_upstream_unavailable(
    sandbox_server, sandbox
):
    sandbox.inject("slow", seconds=2.0)
    started = time.monotonic()

    with (
        client_with(sandbox_server, read_timeout=0.2, retries=0) as client,
        pytest.raises(UpstreamUnavailable, match="ReadTimeout|timed out"),
    ):
        client.sync_private_letters("")

    assert time.monotonic() - started < 1.5


def test_a_slow_response_is_retried_like_a_5xx(sandbox_server, sandbox, example_response):
    sandbox.inject("slow", seconds=1.0)

    with client_with(sandbox_server, read_timeout=0.2, retries=1) as client:
        assert client.sync_private_letters("") == example_response["data"]

    assert len(sandbox.calls_to(SYNC)) == 2


def test_a_dropped_connection_on_a_read_is_retried(client, sandbox, example_response):
    sandbox.inject("drop")

    assert client.sync_private_letters("") == example_response["data"]
    assert len(sandbox.calls_to(SYNC)) == 2


def test_nothing_listening_raises_upstream_unavailable(sandbox):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    client = VideosApiClient(
        base_url=f"http://127.0.0.1:{port}/finder/v2/api",
        token=SANDBOX_TOKEN,
        app_id=SANDBOX_APP_ID,
        retries=0,
    )
    with client, pytest.raises(UpstreamUnavailable, match="ConnectionError"):
        client.sync_private_letters("")


# --- the token stays secret ------------------------------------------------------------------


def test_the_token_is_not_in_the_clients_repr(client):
    assert_no_token(repr(client), str(client), vars(client).get("base_url"))
    assert SANDBOX_APP_ID in repr(client)


def test_an_upstream_that_echoes_the_token_does_not_leak_it(client, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    sandbox.inject("token_expired")

    with pytest.raises(UpstreamRejected) as rejected:
        client.sync_private_letters("")

    error = rejected.value
    assert error.msg == f"HTTP HEADER: VideosApi-token={REDACTED} 不可用或已过期"
    assert_no_token(error, error.msg, error.args, error.data, error.__cause__, error.__context__)
    assert caplog.records, "the rejection is logged"
    for record in caplog.records:
        assert_no_token(record.getMessage(), record.args, record.msg)


def test_a_token_echoed_inside_data_is_redacted_too(sandbox_server, sandbox):
    # The sandbox echoes the token it received when that token is unknown.
    token = "leaky-token-0451"
    with (
        client_with(sandbox_server, token=token) as client,
        pytest.raises(UpstreamRejected) as rejected,
    ):
        client.sync_private_letters("")

    assert_no_token(rejected.value, rejected.value.msg, token=token)
    assert REDACTED in rejected.value.msg


# --- redirects are never followed (the token would go along) -------------------------------


@pytest.fixture
def token_catcher():
    """Another local server, standing for whoever a redirect points at: it records every request
    it gets and answers a valid envelope, so a client that followed a redirect would succeed."""
    received: list[dict] = []

    class Catch(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            received.append({"path": self.path, "token": self.headers.get("VideosApi-token")})
            body = b'{"ret": 200, "msg": "ok", "data": {"list": [], "keyBuff": "x", '
            body += b'"newMsgId": 1, "mainFinderUsername": "v2_x@finder", "fileUrl": "http://x/"}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Catch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


UPSTREAM_CALLS = {
    "syncPrivateLetterMsg": lambda c: c.sync_private_letters(""),
    "postPrivateLetter": lambda c: c.post_private_letter(
        content="hi", to_username="v2_a@finder", my_username="v2_b@finder", msg_session_id="s"
    ),
    "postPrivateLetterImg": lambda c: c.post_private_letter_image(
        img_url="http://x/a.png",
        to_username="v2_a@finder",
        my_username="v2_b@finder",
        msg_session_id="s",
    ),
    "getProfile": lambda c: c.get_profile(),
    "contactList": lambda c: c.contact_list(my_username="v2_b@finder", query="v2_a@finder"),
    "downloadImage": lambda c: c.download_image(xml="<msg><img /></msg>", image_type=2),
}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("endpoint", list(UPSTREAM_CALLS))
def test_a_redirect_is_not_followed_and_the_error_names_where_it_pointed(
    client, sandbox, token_catcher, status, endpoint
):
    sandbox.inject(
        "redirect",
        path=endpoint,
        status=status,
        location=f"{token_catcher.url}/collect/v2?session=abc123secret#frag",
    )

    with pytest.raises(UpstreamRedirected) as redirected:
        UPSTREAM_CALLS[endpoint](client)

    assert token_catcher.received == []
    message = str(redirected.value)
    assert f"HTTP {status}" in message
    assert f"{token_catcher.url}/collect/v2" in message
    assert "abc123secret" not in message and "frag" not in message
    assert_no_token(message)
    assert len(sandbox.calls_to(endpoint)) == 1  # a redirect is not retried either


def test_a_relative_redirect_is_named_with_the_upstreams_host_and_no_credentials(
    client, sandbox, sandbox_server
):
    sandbox.inject("redirect", location="/elsewhere?token=abc")

    with pytest.raises(UpstreamRedirected, match="redirected to http://127.0.0.1:\\d+/elsewhere "):
        client.sync_private_letters("")

    sandbox.inject("redirect", location="https://user:pw@evil.example:8443/x")
    with pytest.raises(UpstreamRedirected) as redirected:
        client.sync_private_letters("")
    assert "https://evil.example:8443/x" in str(redirected.value)
    assert "pw" not in str(redirected.value).replace("api", "")


# --- a call's time is bounded ------------------------------------------------------------------


def finishes_within(seconds: float, call):
    """Run `call` in a thread; its result (or exception) if it ends within `seconds`, else fail.
    An unbounded wait in the code under test then fails the test instead of hanging it."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    outcome["elapsed"] = time.monotonic() - started
    return outcome


def test_a_retry_after_of_an_hour_is_obeyed_for_a_few_seconds_at_most(
    client, sandbox, settings, example_response
):
    settings.VIDEOSAPI_MAX_RETRY_AFTER_SECONDS = 0.5
    sandbox.inject("retry_after", seconds=3600)

    outcome = finishes_within(10, lambda: client.sync_private_letters(""))

    assert outcome.get("result") == example_response["data"]
    assert 0.4 <= outcome["elapsed"] < 5
    assert len(sandbox.calls_to(SYNC)) == 2


def test_a_hanging_upstream_is_given_up_on_at_the_deadline_retries_included(
    sandbox_server, sandbox
):
    sandbox.inject("slow", seconds=5, times=10)
    client = client_with(
        sandbox_server, read_timeout=30, retries=3, deadline=time.monotonic() + 1.5
    )

    outcome = finishes_within(10, lambda: client.sync_private_letters(""))

    assert isinstance(outcome.get("error"), UpstreamUnavailable)
    assert outcome["elapsed"] < 2.5
    client.close()


def test_no_retry_is_made_that_could_not_end_before_the_deadline(sandbox_server, sandbox):
    sandbox.inject("http_502", times=10)
    # Each attempt may take 5 + 3 s; with 4 s left, the first 502 is the answer.
    client = client_with(
        sandbox_server,
        connect_timeout=5,
        read_timeout=3,
        retries=3,
        deadline=time.monotonic() + 4,
    )

    with pytest.raises(UpstreamUnavailable, match="HTTP 502"):
        client.sync_private_letters("")

    assert len(sandbox.calls_to(SYNC)) == 1
    client.close()


def test_a_call_after_the_deadline_is_not_made(sandbox_server, sandbox):
    client = client_with(sandbox_server, deadline=time.monotonic() - 1)

    with pytest.raises(UpstreamUnavailable, match="out of time") as late:
        client.sync_private_letters("")

    assert late.value.reached is False
    assert sandbox.calls_to(SYNC) == []
    client.close()


# --- the environment ---------------------------------------------------------------------------


def test_proxy_settings_are_read_once_when_the_client_is_made(sandbox_server, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "")
    client = VideosApiClient(
        base_url="https://videosapi.example/finder/v2/api", token=SANDBOX_TOKEN, app_id="a"
    )
    # Later changes to the environment do not reach a made client: requests no longer reads it
    # (nor ~/.netrc) on every call.
    monkeypatch.delenv("HTTPS_PROXY")

    assert client._reads.trust_env is False
    assert client._reads.proxies["https"] == "http://proxy.internal:3128"
    assert client._writes.proxies["https"] == "http://proxy.internal:3128"


def test_no_proxy_keeps_the_upstream_direct_and_a_ca_bundle_is_used(
    sandbox_server, sandbox, monkeypatch, tmp_path
):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with client_with(sandbox_server) as client:
        assert client.sync_private_letters("")["list"]
        assert client._reads.verify == str(bundle)


def test_a_netrc_password_is_never_sent_to_the_upstream(raw_upstream, monkeypatch, tmp_path):
    client, serve = raw_upstream
    serve.body = b'{"ret": 200, "data": {}}'
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    client.get_profile()

    assert serve.headers_seen
    assert all("Authorization" not in headers for headers in serve.headers_seen)
