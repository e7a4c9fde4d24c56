"""The VideosApi HTTP client: one requests.Session per client, every call `POST {base}{path}`
with a JSON body, the `VideosApi-token` header, and the `{ret, msg, data}` envelope checked.

The token is a secret: it is sent as a header and nowhere else, is not in the client's repr, and is
redacted from every error message (the upstream has been seen to echo it back)."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError, ResponseError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

TOKEN_HEADER = "VideosApi-token"
REDACTED = "[redacted]"
# A request with less time than this before its deadline is not worth making.
MIN_REQUEST_SECONDS = 0.5


class VideosApiError(Exception):
    """Anything that went wrong talking to VideosApi. `str()` is safe to show and store."""

    @property
    def needs_operator(self) -> bool:
        """Retrying later cannot help (token rejected, device offline): stop, tell an operator."""
        return False


class UpstreamUnavailable(VideosApiError):
    """The service could not be reached or failed (timeouts, connection errors, HTTP 5xx).

    `reached` is False only when no connection was ever made, so the request cannot have taken
    effect; otherwise a send may have been delivered even though no answer came back."""

    def __init__(self, message: str, *, reached: bool = True):
        super().__init__(message)
        self.reached = reached


class UpstreamBadResponse(VideosApiError):
    """The service answered something that is not the documented JSON envelope."""


class UpstreamRedirected(UpstreamBadResponse):
    """The service answered with a redirect. It is never followed: the request carries the token,
    and a redirect (a hijacked or misconfigured base URL) would hand it to whoever it points at.
    The message names where it points (scheme, host, path) so an operator can fix the base URL."""


class UpstreamRejected(VideosApiError):
    """The envelope says `ret != 200`; `msg` and `data` are the service's own words."""

    def __init__(self, ret: Any, msg: str, data: Any = None):
        self.ret = ret
        self.msg = msg
        self.data = data
        detail = data.get("msg") if isinstance(data, dict) else None
        text = f"ret={ret}: {msg}" + (f" ({detail})" if detail and detail != msg else "")
        super().__init__(text)

    @property
    def token_rejected(self) -> bool:
        return TOKEN_HEADER.lower() in self.msg.lower() or "不可用或已过期" in self.msg

    @property
    def device_unavailable(self) -> bool:
        detail = self.data.get("msg", "") if isinstance(self.data, dict) else ""
        return any(marker in f"{self.msg} {detail}" for marker in ("已离线", "设备不存在"))

    @property
    def needs_operator(self) -> bool:
        return self.token_rejected or self.device_unavailable

    @property
    def outage(self) -> bool:
        """The account's device is offline or gone: nothing an operator can fix here, and it
        usually comes back by itself (sync probes it on a slow schedule)."""
        return self.device_unavailable and not self.token_rejected


class VideosApiClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        app_id: str,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retries: int | None = None,
        deadline: float | None = None,
    ):
        """`deadline` (a time.monotonic() value) bounds every call's total time, retries and
        backoff included: each request's timeouts shrink to the time left, a retry that could not
        finish before it is not made, and a call made after it fails at once."""
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.app_id = app_id
        self._token = token
        self.timeout = (
            connect_timeout if connect_timeout is not None else settings.VIDEOSAPI_CONNECT_TIMEOUT,
            read_timeout if read_timeout is not None else settings.VIDEOSAPI_READ_TIMEOUT,
        )
        retries = settings.VIDEOSAPI_RETRIES if retries is None else retries
        # Reads are safe to repeat (a re-sent keyBuff re-delivers the same page), so they retry
        # on timeouts and 5xx too. A send is repeated only when the request never left
        # (connection refused): after that the upstream may have delivered it.
        bounds = {"deadline": deadline, "attempt_seconds": sum(self.timeout)}
        self._reads = self._session(
            BoundedRetry(
                **bounds,
                total=retries,
                connect=retries,
                read=retries,
                status=retries,
                backoff_factor=0.5,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,
                raise_on_status=False,
                respect_retry_after_header=True,
            )
        )
        self._writes = self._session(
            BoundedRetry(
                **bounds,
                total=retries,
                connect=retries,
                read=0,
                status=0,
                other=0,
                backoff_factor=0.5,
                allowed_methods=None,
            )
        )

    def __repr__(self) -> str:
        return f"<VideosApiClient {self.base_url} app_id={self.app_id!r}>"

    def _session(self, retry: Retry) -> requests.Session:
        session = requests.Session()
        # With trust_env on, requests reads the environment and ~/.netrc again on every request:
        # a filesystem lookup per call, a sixth of a nickname backfill's CPU. The proxy and CA
        # settings are read once here instead; ~/.netrc is not wanted at all (the token header
        # is the only credential this client sends).
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers[TOKEN_HEADER] = self._token
        return session

    def close(self) -> None:
        self._reads.close()
        self._writes.close()

    def __enter__(self) -> VideosApiClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- endpoints ---------------------------------------------------------------------------

    def sync_private_letters(self, key_buff: str) -> Any:
        """One page of new private letters after `key_buff`; returns the envelope's `data`."""
        return self.call("/finder/syncPrivateLetterMsg", {"keyBuff": key_buff})

    def post_private_letter(
        self, *, content: str, to_username: str, my_username: str, msg_session_id: str
    ) -> int:
        """Send a text letter; returns its newMsgId. See _send for what its errors mean."""
        return self._send(
            "/finder/postPrivateLetter",
            {
                "content": content,
                "toUserName": to_username,
                "myUserName": my_username,
                "msgSessionId": msg_session_id,
            },
        )

    def post_private_letter_image(
        self, *, img_url: str, to_username: str, my_username: str, msg_session_id: str
    ) -> int:
        """Send an image letter (the upstream fetches `img_url`); returns its newMsgId."""
        return self._send(
            "/finder/postPrivateLetterImg",
            {
                "imgUrl": img_url,
                "toUserName": to_username,
                "myUserName": my_username,
                "msgSessionId": msg_session_id,
            },
        )

    def _send(self, path: str, body: dict[str, Any]) -> int:
        """A send, which must not be repeated blindly. Two answers are clear: a newMsgId (sent)
        and an envelope with ret != 200 (UpstreamRejected: not sent). So is a redirect, never
        followed (UpstreamRedirected: not sent). Any other answer once the request may have
        reached the service (an empty `data`, no newMsgId, a body that is not JSON, an error
        page) leaves the letter perhaps delivered: it is raised as UpstreamUnavailable with
        `reached` set, as a lost answer is."""
        try:
            return self._new_msg_id(self.call(path, body, idempotent=False))
        except UpstreamRedirected:
            raise
        except UpstreamBadResponse as exc:
            raise UpstreamUnavailable(str(exc), reached=True) from None

    def get_profile(self) -> dict[str, Any]:
        data = self.call("/finder/getProfile", {})
        if not isinstance(data, dict):
            raise UpstreamBadResponse("getProfile data is not an object")
        return data

    def contact_list(self, *, my_username: str, query: str) -> list[dict[str, Any]]:
        data = self.call(
            "/finder/contactList",
            {"myUserName": my_username, "myRoleType": 3, "queryInfo": query},
        )
        return [entry for entry in data or [] if isinstance(entry, dict)]

    def download_image(self, *, xml: str, image_type: int) -> str:
        """A downloadable URL for an image message (1 HD, 2 normal, 3 thumbnail)."""
        data = self.call("/message/downloadImage", {"xml": xml, "type": image_type})
        url = data.get("fileUrl") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UpstreamBadResponse("downloadImage returned no fileUrl")
        return url

    # --- transport ---------------------------------------------------------------------------

    def call(self, path: str, body: dict[str, Any], *, idempotent: bool = True) -> Any:
        """POST `body` (plus appId) to `path`; return the envelope's `data` when `ret == 200`."""
        url = f"{self.base_url}{path}"
        session = self._reads if idempotent else self._writes
        timeout = self._timeout_left(path)
        try:
            response = session.post(
                url,
                json={"appId": self.app_id, **body},
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
            if response.is_redirect:
                response.close()
                raise UpstreamRedirected(
                    f"{path}: HTTP {response.status_code}, redirected to "
                    f"{self._redact(_describe_location(url, response.headers['location']))} "
                    "(not followed; check the account's base URL)"
                )
            content = self._read_limited(response)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(
                self._redact(f"{path}: {type(exc).__name__}: {exc}"), reached=_reached(exc)
            ) from None
        if 300 <= response.status_code < 400:
            raise UpstreamRedirected(f"{path}: HTTP {response.status_code} without a location")
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"{path}: HTTP {response.status_code}")
        try:
            envelope = parse_json(content)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python allows
            raise UpstreamBadResponse(
                f"{path}: HTTP {response.status_code}, response is not JSON"
            ) from None
        if not isinstance(envelope, dict) or "ret" not in envelope:
            raise UpstreamBadResponse(f"{path}: response is not a {{ret, msg, data}} envelope")
        ret = envelope.get("ret")
        if ret != 200:
            msg = envelope.get("msg")
            error = UpstreamRejected(
                ret,
                self._redact(msg if isinstance(msg, str) else repr(msg)),
                self._redact_data(envelope.get("data")),
            )
            log.warning("VideosApi %s for app %s rejected: %s", path, self.app_id, error)
            raise error
        return envelope.get("data")

    def _timeout_left(self, path: str) -> tuple[float, float]:
        """The (connect, read) timeouts for the next request: the configured ones, shrunk to the
        time left before the deadline. Raises when none is left: the request is not made."""
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left < MIN_REQUEST_SECONDS:
            raise UpstreamUnavailable(f"{path}: out of time for this pass", reached=False)
        return (min(self.timeout[0], left), min(self.timeout[1], left))

    def _read_limited(self, response: requests.Response) -> bytes:
        limit = settings.VIDEOSAPI_MAX_RESPONSE_BYTES
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=64 * 1024):
            size += len(chunk)
            if size > limit:
                response.close()
                raise UpstreamBadResponse(f"response is larger than {limit} bytes")
            # The read timeout is per read: a body trickling in could otherwise outlast it.
            if self.deadline is not None and time.monotonic() > self.deadline:
                response.close()
                raise UpstreamUnavailable("the response was still arriving at the deadline")
            chunks.append(chunk)
        return b"".join(chunks)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, REDACTED) if self._token else text

    def _redact_data(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: self._redact_data(value) for key, value in data.items()}
        if isinstance(data, str):
            return self._redact(data)
        return data

    @staticmethod
    def _new_msg_id(data: Any) -> int:
        value = data.get("newMsgId") if isinstance(data, dict) else None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if type(value) is not int or not 0 < value < 2**64:
            raise UpstreamBadResponse("the send was accepted but returned no newMsgId")
        return value


class BoundedRetry(Retry):
    """urllib3's Retry with two bounds. A Retry-After is obeyed for a few seconds at most
    (VIDEOSAPI_MAX_RETRY_AFTER_SECONDS): urllib3 would sleep for as long as the service asks, an
    hour if it says so, holding the worker and the account's lease. And with a deadline, a retry
    is made only if its wait plus a whole attempt (`attempt_seconds`) still ends before it."""

    def __init__(
        self, *args: Any, deadline: float | None = None, attempt_seconds: float = 0.0, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.attempt_seconds = attempt_seconds

    def new(self, **kwargs: Any) -> BoundedRetry:
        kwargs.setdefault("deadline", self.deadline)
        kwargs.setdefault("attempt_seconds", self.attempt_seconds)
        return super().new(**kwargs)

    def get_retry_after(self, response) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is None:
            return None
        return min(seconds, settings.VIDEOSAPI_MAX_RETRY_AFTER_SECONDS)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, **kwargs):
        retry = super().increment(method, url, response, error, _pool, **kwargs)
        if self.deadline is None:
            return retry
        wait = retry.get_backoff_time()
        if response is not None and self.respect_retry_after_header:
            wait = max(wait, retry.get_retry_after(response) or 0)
        if time.monotonic() + wait + self.attempt_seconds > self.deadline:
            # What urllib3 raises when retries run out: the caller sees the last error, or (with
            # raise_on_status off) gets the last response back.
            raise MaxRetryError(_pool, url, error or ResponseError("no time left to retry"))
        return retry


def _describe_location(url: str, location: str) -> str:
    """Where a redirect points, for an error message: scheme, host and path only. The query and
    fragment can carry secrets, and so can a user:password before the host."""
    target = urlsplit(urljoin(url, location))
    host = target.hostname or ""
    if target.port:
        host = f"{host}:{target.port}"
    return f"{target.scheme}://{host}{target.path}"


def parse_json(content: bytes) -> Any:
    """The response's JSON. orjson reads a 1,000-letter page in half the time json does, and
    exactly where it can: it refuses NaN, Infinity and lone surrogates (json accepts them, and
    payloads cleans the surrogates) and reads integers past 64 bits as floats, so a body with
    either goes to json, which keeps every integer exact. NaN and infinities become null there:
    no database stores them in a JSON column, and one would fail its page for ever."""
    if not _has_wide_integer(content):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    return json.loads(content, parse_constant=lambda _: None, parse_float=_finite_or_none)


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19  # 2**63 has 19 digits, 2**64 - 1 has 20
UINT64_MAX = 2**64 - 1


def _has_wide_integer(content: bytes) -> bool:
    """Whether a run of 19 or more digits in `content` could be an integer orjson would round
    (above 2**64 - 1, or below -2**63). A NewMsgId in range is not; a long digit run inside a
    string or a fraction only costs the slower parser. C-speed passes but for such runs."""
    digits = content.translate(_DIGITS_AS_ZERO)
    start = digits.find(_NINETEEN_DIGITS)
    while start != -1:
        end = start + 19
        while digits[end : end + 1] == b"0":
            end += 1
        number = int(content[start:end])
        if number > (2**63 if content[start - 1 : start] == b"-" else UINT64_MAX):
            return True
        start = digits.find(_NINETEEN_DIGITS, end)
    return False


def _reached(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the service: False only if no connection was made."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the real cause
    # NewConnectionError covers refused connections and failed DNS lookups (its subclass).
    return not isinstance(cause, NewConnectionError)
