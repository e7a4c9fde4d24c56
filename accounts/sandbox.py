"""A local stand-in for VideosApi, for the demo and the tests, spoken to over real HTTP.

It behaves like the service as documented in ../shared/upstream: every call is a POST with the
`VideosApi-token` header and a JSON body with `appId`; answers are `{ret, msg, data}` envelopes,
failures `ret: 500` with the service's own wording. For each account it keeps a log of private
letters: the service's own example page first (served verbatim), then a scripted conversation in
Chinese (text, images, app messages with a shared Channels video among them, notices, unknown
types), then whatever is added later: letters generated every few seconds (`live_interval`; now
and then a shared Channels live or video), letters added through `add_letter()` or
`POST /_sandbox/letters`, and echoes of letters sent with postPrivateLetter. `keyBuff` is a
position in that log, so an old keyBuff re-delivers what came after it, as upstream does.

Faults are injected with `inject()` or `POST /_sandbox/faults` and apply to the next matching calls:
http_500 / http_502, ret_500, token_expired, offline, invalid_json, slow, redeliver (the next page
starts `overlap` letters early), drop (the call takes effect but the connection closes unanswered),
redirect (HTTP `status`, default 307, to `location`), retry_after (HTTP 503 with a `Retry-After:
seconds` header), answer (`{"ret": 200, "data": <data>}` with whatever `data` is given). An
account's device can be taken offline (`set_device(app_id, "offline")`, or "missing"): every call
for it then answers as the service does, until it is set "online" again. The taken_* faults let
the call take effect (a send is delivered) and then spoil its answer: taken_empty (`{"ret": 200,
"data": {}}`), taken_not_json (HTTP 200, an HTML page), taken_http_502 (an HTML error page), and
taken_hang (the right answer, `seconds` late: long enough to kill the caller mid-call).

Control endpoints (no token): POST /_sandbox/faults {kind, times, path, seconds, overlap},
POST /_sandbox/letters {app_id, text, msg_session_id?, peer?}, GET /_sandbox/calls,
GET /_sandbox/files/<name>.png (the images downloadImage points at),
GET /_sandbox/avatars/<name>.png (the pictures contactList's headUrl points at),
GET /_sandbox/covers/<name>.png (the covers of the Channels shares it writes).

With `demo_account`, start_sandbox serves the demo's account and a second one, its sister shop
(DEMO_SISTER_APP_ID), where one of the demo's viewers (王小明) wrote too: the same person in two
accounts, as the viewer profile links them. The sister's log is fixed (no live letters), so the
demo's stored cursor for it stays valid across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from accounts.sandbox_media import (
    avatar_url,
    cover_file,
    finder_feed_xml,
    finder_live_xml,
    finder_name,
    picture_file,
    picture_size,
    png_bytes,
)

EXAMPLE_PATH = Path(__file__).with_name("sandbox_data") / "sync_example.json"
EXAMPLE_BYTES = EXAMPLE_PATH.read_bytes()
EXAMPLE = json.loads(EXAMPLE_BYTES)
EXAMPLE_ITEMS: list[dict[str, Any]] = EXAMPLE["data"]["list"]
EXAMPLE_KEY_BUFF: str = EXAMPLE["data"]["keyBuff"]

DEMO_APP_ID = "wx_sandbox_demo"
DEMO_TOKEN = "sandbox-demo-token-8f3a"
DEMO_SISTER_APP_ID = "wx_sandbox_sister"
DEMO_SISTER_TOKEN = "sandbox-sister-token-2c71"
TOKEN_HEADER = "VideosApi-token"
PAGE_SIZE = 10
MAX_TEXT_LENGTH = 2000

# Identities in the example: the account writes as its WeChat id and as its Channels name; its
# one peer there is EXAMPLE_PEER.
EXAMPLE_ACCOUNT_WXID = "wxid_0xsqb3o0tsvz22"
EXAMPLE_ACCOUNT_FINDER = (
    "v2_060000231003b20faec8c7e28811c4d5cc0ded37b0779c48c759a7446a87688c2774e5300c32@finder"
)
EXAMPLE_PEER = (
    "v2_060000231003b20faec8c6e18f10c7d6c903ec3db0776955d3d97c6b329d6aa58693bcdb7ad1@finder"
)
EXAMPLE_SESSION = "3eab1521919d4531c83a166faa56cf844737c4a295b127f3edcb68ed4375d049@findermsg"


def session_id_for(account: str, peer: str) -> str:
    return hashlib.sha256(f"{account}|{peer}".encode()).hexdigest() + "@findermsg"


@dataclass(frozen=True)
class Peer:
    username: str
    nickname: str


PEERS = [
    Peer(EXAMPLE_PEER, "小鹿同学"),
    Peer(finder_name("peer-1"), "王小明"),
    Peer(finder_name("peer-2"), "Lily 🌸"),
    Peer(finder_name("peer-3"), "陈阿姨的花店"),
    Peer(finder_name("peer-4"), "Tom Zhang"),
]

IMAGE_XML = (
    '<?xml version="1.0"?>\n<msg>\n\t<img aeskey="{key}" encryver="1" cdnthumbaeskey="{key}" '
    'cdnthumburl="{url}" cdnthumblength="{thumb_length}" cdnthumbheight="{height}" '
    'cdnthumbwidth="{width}" cdnmidheight="0" cdnmidwidth="0" cdnhdheight="0" cdnhdwidth="0" '
    'cdnmidimgurl="{url}" length="{length}" cdnbigimgurl="{url}" hdlength="{hd_length}" '
    'md5="{md5}" />\n\t<platform_signature></platform_signature>\n\t<imgdatahash></imgdatahash>'
    "\n</msg>\n"
)
APP_XML = (
    '<msg><appmsg appid="" sdkver="0"><title>{title}</title><des>{des}</des>'
    "<type>{type}</type><url>{url}</url></appmsg></msg>"
)
# The scripted conversation after the example: (peer index, isSender, MsgType, content spec); a
# share's spec makes its XML from the running sandbox's base_url (its cover is served there).
SCRIPT: list[tuple[int, int, int, Any]] = [
    (0, 0, 1, "你好，请问这款保温杯还有货吗？"),
    (0, 1, 1, "您好！有货的，今天下单明天发货～"),
    (1, 0, 1, "老板，我昨天买的衣服尺码不对，可以换吗？\n订单号 20240124-8831"),
    (1, 0, 3, ("photo-1", 160, 120)),
    (1, 1, 1, "可以的，请在订单页申请换货，运费我们承担。详情见 https://example.com/help/exchange"),
    (2, 0, 1, "Hi, do you ship to Singapore?"),
    (
        2,
        0,
        49,
        lambda base_url: finder_feed_xml(
            "spring", desc="Spring collection 春季新品", nickname="沙盒小店", base_url=base_url
        ),
    ),
    (3, 0, 1, "直播间说的优惠券在哪里领？"),
    (3, 0, 34, '<msg><voicemsg voicelength="3200" length="5120" /></msg>'),
    (3, 0, 47, '<msg><emoji md5="0d1a5c" len="2048" /></msg>'),
    (3, 1, 1, "优惠券在直播间右下角的「福利」里～"),
    (4, 0, 1, "<script>alert('hi')</script> 这条消息会被正常显示吗？"),
    (4, 0, 10000, "你已添加了Tom Zhang，现在可以开始聊天了。"),
    (4, 0, 49, ("618 活动说明", "点击查看活动规则", 5)),
    (4, 0, 9999, "<msg>a message type nobody documented</msg>"),
    (2, 0, 3, ("photo-2", 90, 160)),
    (2, 1, 1, "Yes, we ship to Singapore. Delivery takes 5-7 days."),
    (0, 0, 10002, '"小鹿同学" 撤回了一条消息'),
]

LIVE_TEXTS = [
    "在吗？想咨询一下",
    "这个颜色还有别的尺码吗？",
    "已经下单了，麻烦尽快发货，谢谢！",
    "请问可以开发票吗？",
    "收到货了，质量很好 👍",
    "物流好像一直没有更新……",
    "Is there a discount for two?",
    "直播什么时候开始？",
]


def running_share(n: int, base_url: str = "") -> str:
    """The XML of the nth letter the sandbox makes up while it runs, when that is a share: a
    Channels live or video of the shop's, taking turns."""
    if n % 12 == 4:
        return finder_live_xml(
            f"live-{n}", desc="今晚8点 福利直播 🎁", nickname="沙盒小店", base_url=base_url
        )
    return finder_feed_xml(
        f"live-{n}",
        desc=f"新品试穿 {n}",
        nickname="沙盒小店",
        width=1280,
        height=720,
        base_url=base_url,
    )


def letter_item(
    *,
    seq: int,
    new_msg_id: int,
    me: str,
    peer: str,
    is_sender: bool,
    msg_type: int,
    content: str,
    create_time: int,
    msg_session_id: str,
    msg_source: str = "",
) -> dict[str, Any]:
    """One syncPrivateLetterMsg list item, shaped like the service's example."""
    return {
        "syncKeyType": 5,
        "itemType": 1,
        "content": {
            "msg": {
                "MsgId": seq,
                "FromUserName": {"string": me if is_sender else peer},
                "ToUserName": {"string": peer if is_sender else me},
                "MsgType": msg_type,
                "Content": {"string": content},
                "Status": 3,
                "ImgStatus": 2 if msg_type == 3 else 1,
                "ImgBuf": {"iLen": 0},
                "CreateTime": create_time,
                "MsgSource": msg_source,
                "NewMsgId": new_msg_id,
                "MsgSeq": seq,
            },
            "msgSessionId": msg_session_id,
            "seq": seq,
            "extinfo": "CAIQAw==",
            "isSender": 1 if is_sender else 0,
        },
        "subType": 2,
    }


@dataclass
class Fault:
    kind: str
    path: str = "/finder/syncPrivateLetterMsg"
    times: int = 1
    seconds: float = 2.0
    overlap: int = 3
    status: int = 307
    location: str = ""
    data: Any = None


@dataclass
class SandboxAccount:
    app_id: str
    token: str
    finder_username: str
    wxid: str
    letters: list[dict[str, Any]] = field(default_factory=list)
    # The example page is served verbatim, once, from an empty keyBuff.
    serves_example: bool = True
    next_seq: int = 1
    live_count: int = 0
    # "online", "offline" (the phone logged out: 微信已离线) or "missing" (设备不存在).
    device: str = "online"
    # A long history made on demand (see SandboxState.add_history): the first `history` places
    # of the log, over `history_sessions` peers; `letters` follow it.
    history: int = 0
    history_sessions: int = 0
    # Whether live_interval writes letters to this account.
    live: bool = True


class SandboxState:
    """Everything the sandbox knows; thread-safe; tests reach into it directly."""

    def __init__(self, *, live_interval: float | None = None, page_size: int = PAGE_SIZE):
        self.lock = threading.RLock()
        self.live_interval = live_interval
        self.page_size = page_size
        self.started = time.monotonic()
        self.accounts: dict[str, SandboxAccount] = {}
        self.faults: list[Fault] = []
        self.calls: list[dict[str, Any]] = []
        self.base_url = ""
        # Letters written while the sandbox runs get fresh ids on every start, so a restarted
        # sandbox never hands out an id that a database already holds for another letter.
        self._ids = random.Random()

    # --- setup ---------------------------------------------------------------------------------

    def add_account(
        self, app_id: str, token: str, *, example: bool = True, script: bool = True
    ) -> SandboxAccount:
        with self.lock:
            account = SandboxAccount(
                app_id=app_id,
                token=token,
                serves_example=example,
                finder_username=EXAMPLE_ACCOUNT_FINDER if example else finder_name(app_id),
                wxid=EXAMPLE_ACCOUNT_WXID if example else f"wxid_{app_id[:16]}",
            )
            if example:
                account.letters.extend(json.loads(json.dumps(EXAMPLE_ITEMS)))
                account.next_seq = len(EXAMPLE_ITEMS) + 1
            self.accounts[app_id] = account
            if script:
                # The scripted history arrived over the last few hours, a few minutes apart. Its
                # ids are the same on every start, like a real account's history: re-reading it
                # from an empty keyBuff stores nothing twice.
                script_ids = random.Random(f"script:{app_id}")
                start = int(time.time()) - 600 * len(SCRIPT)
                for index, (peer_index, is_sender, msg_type, spec) in enumerate(SCRIPT):
                    self._append_scripted(
                        account,
                        PEERS[peer_index],
                        is_sender,
                        msg_type,
                        spec,
                        create_time=start + 600 * index,
                        new_msg_id=script_ids.randrange(10**17, 2**64),
                    )
            return account

    def add_history(self, app_id: str, *, letters: int, sessions: int) -> None:
        """Give the account a history of `letters` letters over `sessions` peers, made on demand
        page by page (a million cost no memory here), served before its other letters; its
        peers' nicknames are known to contactList."""
        with self.lock:
            account = self.accounts[app_id]
            account.history, account.history_sessions = letters, max(1, sessions)

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.faults.clear()
            self.calls.clear()
            self.started = time.monotonic()

    def inject(self, kind: str, **options: Any) -> None:
        with self.lock:
            self.faults.append(Fault(kind=kind, **options))

    def set_device(self, app_id: str, device: str) -> None:
        """Take the account's device "offline" or "missing", or bring it back "online"."""
        if device not in ("online", "offline", "missing"):
            raise ValueError(f"unknown device state {device!r}")
        with self.lock:
            self.accounts[app_id].device = device

    def calls_to(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [call for call in self.calls if call["path"].endswith(path)]

    def add_letter(
        self,
        app_id: str,
        text: str,
        *,
        peer: Peer | None = None,
        msg_session_id: str | None = None,
        msg_type: int = 1,
        is_sender: bool = False,
        new_msg_id: int | None = None,
    ) -> dict[str, Any]:
        """Append a letter to the account's log, as if a viewer (or the account) just wrote."""
        with self.lock:
            account = self.accounts[app_id]
            peer = peer or PEERS[1]
            return self._append(
                account,
                peer=peer.username,
                is_sender=is_sender,
                msg_type=msg_type,
                content=text,
                msg_session_id=msg_session_id,
                new_msg_id=new_msg_id,
            )

    # --- the log ---------------------------------------------------------------------------

    def _new_msg_id(self) -> int:
        # The full unsigned 64-bit range, so values above 2**63 show up as upstream has them.
        return self._ids.randrange(10**17, 2**64)

    def _append(
        self,
        account: SandboxAccount,
        *,
        peer: str,
        is_sender: bool,
        msg_type: int,
        content: str,
        msg_session_id: str | None = None,
        new_msg_id: int | None = None,
        me: str | None = None,
        create_time: int | None = None,
    ) -> dict[str, Any]:
        me = me or account.finder_username
        seq = account.next_seq
        account.next_seq += 1
        item = letter_item(
            seq=seq,
            new_msg_id=new_msg_id or self._new_msg_id(),
            me=me,
            peer=peer,
            is_sender=is_sender,
            msg_type=msg_type,
            content=content,
            create_time=create_time or int(time.time()),
            msg_session_id=msg_session_id
            or (
                EXAMPLE_SESSION
                if peer == EXAMPLE_PEER and account.serves_example
                else session_id_for(account.app_id, peer)
            ),
        )
        account.letters.append(item)
        return item

    def _append_scripted(
        self,
        account: SandboxAccount,
        peer: Peer,
        is_sender: int,
        msg_type: int,
        spec: Any,
        create_time: int | None = None,
        new_msg_id: int | None = None,
    ) -> None:
        if msg_type == 3:
            name, width, height = spec
            md5 = hashlib.md5(name.encode()).hexdigest()
            content = IMAGE_XML.format(
                key=hashlib.md5(md5.encode()).hexdigest(),
                url=f"3057020100044b3049{md5}",
                width=width,
                height=height,
                thumb_length=width * height // 12,
                length=width * height * 2,
                hd_length=width * height * 5,
                md5=md5,
            )
        elif msg_type == 49 and isinstance(spec, tuple):
            title, des, app_type = spec
            content = APP_XML.format(
                title=title, des=des, type=app_type, url="https://channels.weixin.qq.com/"
            )
        elif callable(spec):
            content = spec(self.base_url)
        else:
            content = spec
        self._append(
            account,
            peer=peer.username,
            is_sender=bool(is_sender),
            msg_type=msg_type,
            content=content,
            create_time=create_time,
            new_msg_id=new_msg_id,
        )

    def _generate_live(self, account: SandboxAccount) -> None:
        """Letters that 'arrived' since the sandbox started, one every live_interval seconds."""
        if not self.live_interval or not account.live:
            return
        due = int((time.monotonic() - self.started) / self.live_interval)
        while account.live_count < due:
            n = account.live_count
            account.live_count += 1
            peer = PEERS[n % len(PEERS)]
            if n % 7 == 6:
                self._append_scripted(account, peer, 0, 3, (f"live-{n}", 120, 160))
            elif n % 12 in (4, 10):
                self._append_scripted(account, peer, 0, 49, running_share(n, self.base_url))
            else:
                self._append(
                    account,
                    peer=peer.username,
                    is_sender=False,
                    msg_type=1,
                    content=LIVE_TEXTS[n % len(LIVE_TEXTS)],
                )

    # --- the API -------------------------------------------------------------------------------

    def handle(self, path: str, token: str | None, body: Any) -> tuple:
        """Answer one API call: (HTTP status, response body), or with a third item, headers."""
        with self.lock:
            self.calls.append({"path": path, "body": body, "token_sent": token is not None})
            fault = self._take_fault(path)
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)  # outside the lock: other calls go on meanwhile
        with self.lock:
            answer = self._answer(path, token, body, fault)
        if fault and fault.kind == "taken_hang":
            time.sleep(fault.seconds)
        return answer

    def _answer(self, path: str, token: str | None, body: Any, fault: Fault | None) -> tuple:
        if fault and fault.kind == "redirect":
            return fault.status, b"", {"Location": fault.location}
        if fault and fault.kind == "retry_after":
            return 503, b"busy", {"Retry-After": str(int(fault.seconds))}
        if fault and fault.kind == "answer":
            return _envelope(200, "操作成功", fault.data)
        if fault and fault.kind in ("http_500", "http_502"):
            return int(fault.kind[-3:]), b"<html><body>Bad Gateway</body></html>"
        if fault and fault.kind == "invalid_json":
            return 200, b"<html>upstream maintenance</html>"
        if fault and fault.kind == "ret_500":
            return _envelope(500, "系统繁忙，请稍后再试")
        if fault and fault.kind == "token_expired":
            return _envelope(500, f"HTTP HEADER: {TOKEN_HEADER}={token} 不可用或已过期")
        if fault and fault.kind == "offline":
            return _envelope(500, "发送消息失败", {"code": "-1", "msg": "微信已离线"})

        if not token:
            return _envelope(500, f"header:{TOKEN_HEADER} 不可为空")
        if not isinstance(body, dict):
            return _envelope(500, "参数错误")
        account = self.accounts.get(str(body.get("appId")))
        if account is None or account.token != token:
            if all(known.token != token for known in self.accounts.values()):
                return _envelope(500, f"HTTP HEADER: {TOKEN_HEADER}={token} 不可用或已过期")
            return _envelope(500, "操作失败", {"code": "-1", "msg": "[appId]设备不存在"})
        if account.device == "offline":
            return _envelope(500, "操作失败", {"code": "-1", "msg": "微信已离线"})
        if account.device == "missing":
            return _envelope(500, "操作失败", {"code": "-1", "msg": "[appId]设备不存在"})

        endpoint = path.rsplit("/", 2)
        name = "/" + "/".join(endpoint[-2:])
        handler = {
            "/finder/syncPrivateLetterMsg": self._sync,
            "/finder/postPrivateLetter": self._post_letter,
            "/finder/postPrivateLetterImg": self._post_letter_image,
            "/finder/getProfile": self._profile,
            "/finder/contactList": self._contacts,
            "/message/downloadImage": self._download_image,
        }.get(name)
        if handler is None:
            return 404, b"Not Found"
        status, payload = handler(account, body, fault)
        if fault and fault.kind in SPOILED_ANSWERS:
            return SPOILED_ANSWERS[fault.kind]
        return status, payload

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if path.endswith(fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _sync(self, account: SandboxAccount, body: dict, fault: Fault | None) -> tuple[int, bytes]:
        key_buff = body.get("keyBuff") or ""
        if not isinstance(key_buff, str):
            return _envelope(500, "keyBuff 参数错误")
        if key_buff == "" and account.serves_example and not (fault and fault.kind == "redeliver"):
            return 200, EXAMPLE_BYTES
        position = _decode_cursor(key_buff)
        if position is None:
            return _envelope(500, "keyBuff 无效")
        self._generate_live(account)
        if fault and fault.kind == "redeliver":
            position = max(0, position - fault.overlap)
        page = _log_slice(account, position, position + self.page_size, self.base_url)
        next_position = position + len(page)
        return _envelope(200, "操作成功", {"list": page, "keyBuff": _encode_cursor(next_position)})

    def _check_send(self, body: dict, field_name: str) -> tuple[int, bytes] | None:
        value = body.get(field_name)
        if not isinstance(value, str) or not value.strip():
            return _envelope(500, f"{field_name} 不能为空")
        if field_name == "content" and len(value) > MAX_TEXT_LENGTH:
            return _envelope(500, "消息内容过长")
        for required in ("toUserName", "myUserName", "msgSessionId"):
            if not isinstance(body.get(required), str) or not body[required]:
                return _envelope(500, f"{required} 不能为空")
        return None

    def _post_letter(
        self, account: SandboxAccount, body: dict, fault: Fault | None
    ) -> tuple[int, bytes]:
        problem = self._check_send(body, "content")
        if problem:
            return problem
        item = self._append(
            account,
            peer=body["toUserName"],
            is_sender=True,
            msg_type=1,
            content=body["content"],
            msg_session_id=body["msgSessionId"],
            me=body["myUserName"],
        )
        new_msg_id = item["content"]["msg"]["NewMsgId"]
        return _envelope(200, "操作成功", {"newMsgId": new_msg_id})

    def _post_letter_image(
        self, account: SandboxAccount, body: dict, fault: Fault | None
    ) -> tuple[int, bytes]:
        problem = self._check_send(body, "imgUrl")
        if problem:
            return problem
        md5 = hashlib.md5(body["imgUrl"].encode()).hexdigest()
        item = self._append(
            account,
            peer=body["toUserName"],
            is_sender=True,
            msg_type=3,
            content=IMAGE_XML.format(
                key=md5,
                url=f"3057{md5}",
                width=120,
                height=120,
                thumb_length=1200,
                length=24000,
                hd_length=60000,
                md5=md5,
            ),
            msg_session_id=body["msgSessionId"],
            me=body["myUserName"],
        )
        return _envelope(200, "操作成功", {"newMsgId": item["content"]["msg"]["NewMsgId"]})

    def _profile(
        self, account: SandboxAccount, body: dict, fault: Fault | None
    ) -> tuple[int, bytes]:
        return _envelope(
            200,
            "操作成功",
            {
                "mainFinderUsername": account.finder_username,
                "aliasInfo": [
                    {"nickname": "沙盒小店", "headImgUrl": "", "roleType": 3},
                    {"nickname": "沙盒店长", "headImgUrl": "", "roleType": 1},
                ],
            },
        )

    def _contacts(
        self, account: SandboxAccount, body: dict, fault: Fault | None
    ) -> tuple[int, bytes]:
        query = body.get("queryInfo")
        found = [peer for peer in PEERS if peer.username == query]
        number = history_peer_number(account, query) if isinstance(query, str) else None
        if number is not None:
            found.append(Peer(query, history_nickname(number)))
        return _envelope(
            200,
            "操作成功",
            [
                {
                    "username": peer.username,
                    "nickname": peer.nickname,
                    "headUrl": avatar_url(self.base_url, peer.username),
                    "signature": "",
                    "extInfo": {"country": "CN", "province": "", "city": "", "sex": 0},
                    "msgInfo": {"msgUsername": peer.username, "sessionId": ""},
                }
                for peer in found
            ],
        )

    def _download_image(
        self, account: SandboxAccount, body: dict, fault: Fault | None
    ) -> tuple[int, bytes]:
        xml = body.get("xml")
        if not isinstance(xml, str) or "<img" not in xml:
            return _envelope(500, "xml 参数错误")
        md5 = hashlib.md5(xml.encode()).hexdigest()
        image_type = body.get("type", 2)
        width, height = picture_size(xml, image_type)
        name = f"{md5}-{image_type}-{width}x{height}"
        return _envelope(200, "操作成功", {"fileUrl": f"{self.base_url}/_sandbox/files/{name}.png"})


SISTER_LETTERS = [
    (PEERS[1], "你们旗舰店和小店是一家吗？我在那边也问过尺码的事。"),
    (PEERS[1], "想换一件大一号的，麻烦看下库存"),
]


def add_sister_account(state: SandboxState) -> SandboxAccount:
    """The demo's second shop: no example page, no script, no live letters; two letters from
    王小明, who also writes to the demo's first account, an hour apart. Their ids are fixed, so
    a restarted sandbox serves the same log (a stored cursor into it stays right)."""
    account = state.add_account(DEMO_SISTER_APP_ID, DEMO_SISTER_TOKEN, example=False, script=False)
    account.live = False
    ids = random.Random(f"script:{DEMO_SISTER_APP_ID}")
    for number, (peer, text) in enumerate(SISTER_LETTERS):
        with state.lock:
            state._append(
                account,
                peer=peer.username,
                is_sender=False,
                msg_type=1,
                content=text,
                new_msg_id=ids.randrange(10**17, 2**64),
                create_time=int(time.time()) - 3600 * (len(SISTER_LETTERS) - number),
            )
    return account


def history_peer(account: SandboxAccount, number: int) -> str:
    """The user name of peer `number` of the account's made-on-demand history."""
    return f"{_history_prefix(account)}{number:016d}@finder"


def history_peer_number(account: SandboxAccount, username: str) -> int | None:
    """Which history peer `username` is, or None: how contactList knows them without a table."""
    prefix = _history_prefix(account)
    digits = username.removeprefix(prefix).removesuffix("@finder")
    if not username.startswith(prefix) or not digits.isdigit() or len(digits) != 16:
        return None
    number = int(digits)
    return number if number < account.history_sessions else None


def history_nickname(number: int) -> str:
    return f"{HISTORY_SURNAMES[number % len(HISTORY_SURNAMES)]}{number:06d}"


HISTORY_SURNAMES = "王李张刘陈杨黄赵吴周"


def _history_prefix(account: SandboxAccount) -> str:
    return f"v2_0600002310{hashlib.sha256(account.app_id.encode()).hexdigest()[:50]}"


def history_item(account: SandboxAccount, position: int, base_url: str = "") -> dict[str, Any]:
    """Letter `position` of the account's history, made the same on every call: peers write
    in runs of up to HISTORY_RUN letters, taking turns; a tenth are images, one in fifty shares a
    Channels video and one in a hundred a live (their covers served at `base_url`), a fifth go
    from the shop to the peer, one a second from the start of 2023."""
    run = max(1, min(HISTORY_RUN, account.history // account.history_sessions))
    number = (position // run) % account.history_sessions
    peer = history_peer(account, number)
    digest = hashlib.blake2b(f"{account.app_id}:{position}".encode(), digest_size=8).digest()
    is_sender = position % 5 == 4
    if position % 50 == 17:
        msg_type = 49
        content = finder_feed_xml(
            f"history:{position}",
            desc=f"新品上架 第{position // 50 + 1}期",
            nickname=HISTORY_AUTHORS[position % len(HISTORY_AUTHORS)],
            duration=15 + position % 100,
            base_url=base_url,
        )
    elif position % 100 == 41:
        msg_type = 49
        content = finder_live_xml(
            f"history:{position}",
            desc="周末福利直播",
            nickname=HISTORY_AUTHORS[position % len(HISTORY_AUTHORS)],
            status=1 + position % 2,
            base_url=base_url,
        )
    elif position % 10 == 3:
        md5 = hashlib.md5(digest).hexdigest()
        msg_type = 3
        content = IMAGE_XML.format(
            key=md5,
            url=f"3057020100044b3049{md5}",
            width=120,
            height=160,
            thumb_length=1600,
            length=38400,
            hd_length=96000,
            md5=md5,
        )
    else:
        msg_type, content = 1, LIVE_TEXTS[position % len(LIVE_TEXTS)]
    return letter_item(
        seq=position + 1,
        new_msg_id=max(1, int.from_bytes(digest, "big")),
        me=account.finder_username,
        peer=peer,
        is_sender=is_sender,
        msg_type=msg_type,
        content=content,
        create_time=HISTORY_START + position,
        msg_session_id=session_id_for(account.app_id, peer),
    )


HISTORY_AUTHORS = ("沙盒小店", "花园日记", "Daily Outfit")
HISTORY_START = 1_672_531_200  # 2023-01-01, so the history is older than anything live
HISTORY_RUN = 5


def _log_slice(
    account: SandboxAccount, start: int, stop: int, base_url: str
) -> list[dict[str, Any]]:
    """Places start..stop of the account's log: made-on-demand history, then `letters`."""
    offset = account.history
    made = [
        history_item(account, position, base_url) for position in range(start, min(stop, offset))
    ]
    return made + account.letters[max(start - offset, 0) : max(stop - offset, 0)]


def _envelope(ret: int, msg: str, data: Any = None) -> tuple[int, bytes]:
    envelope = {"ret": ret, "msg": msg, "data": data}
    try:
        return 200, json.dumps(envelope, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate cannot be UTF-8, but as a \ud800 escape it is valid JSON, which is
        # how the upstream can send one.
        return 200, json.dumps(envelope).encode()


# What a caller gets instead of the answer, after the call took effect: the answer lost on the
# way (drop: status 0 hangs up), or mangled by the service or a proxy in front of it.
SPOILED_ANSWERS: dict[str, tuple[int, bytes]] = {
    "drop": (0, b""),
    "taken_empty": _envelope(200, "操作成功", {}),
    "taken_not_json": (200, b"<html><body>upstream maintenance</body></html>"),
    "taken_http_502": (502, b"<html><body>502 Bad Gateway</body></html>"),
}


def _encode_cursor(position: int) -> str:
    return base64.b64encode(f"sandbox:{position}".encode()).decode()


def _decode_cursor(key_buff: str) -> int | None:
    if key_buff == "":
        return 0
    if key_buff == EXAMPLE_KEY_BUFF:
        return len(EXAMPLE_ITEMS)
    try:
        prefix, _, number = base64.b64decode(key_buff, validate=True).decode().partition(":")
    except ValueError:
        return None
    return int(number) if prefix == "sandbox" and number.isdigit() else None


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body then waits for the
    # client's delayed ACK (~40 ms a call on Linux), which capped a client at ~20 calls a second.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox serves many polls a minute."""

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if status == 0:  # the "drop" fault: hang up without an answer
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def do_POST(self) -> None:
        state = self.server.state
        path = urlparse(self.path).path
        body = self._body()
        if path == "/_sandbox/faults":
            state.inject(**body)
            self._send(200, b'{"ok": true}')
        elif path == "/_sandbox/letters":
            item = state.add_letter(
                body["app_id"], body["text"], msg_session_id=body.get("msg_session_id")
            )
            self._send(200, json.dumps(item, ensure_ascii=False).encode())
        else:
            status, payload, *headers = state.handle(path, self.headers.get(TOKEN_HEADER), body)
            self._send(status, payload, headers=headers[0] if headers else None)

    def do_GET(self) -> None:
        state = self.server.state
        path = urlparse(self.path).path
        if path == "/_sandbox/calls":
            with state.lock:
                payload = json.dumps(state.calls, ensure_ascii=False).encode()
            self._send(200, payload)
        elif path.startswith("/_sandbox/avatars/") and path.endswith(".png"):
            name = path.rsplit("/", 1)[-1].removesuffix(".png")
            self._send(200, png_bytes(96, 96, f"avatar:{name}"), "image/png")
        elif path.startswith("/_sandbox/covers/") and path.endswith(".png"):
            cover = cover_file(path.rsplit("/", 1)[-1].removesuffix(".png"))
            if cover is None:
                self._send(404, b"Not Found", "text/plain")
            else:
                self._send(200, cover, "image/png")
        elif path.startswith("/_sandbox/files/") and path.endswith(".png"):
            name = path.rsplit("/", 1)[-1].removesuffix(".png")
            self._send(200, picture_file(name), "image/png")
        else:
            self._send(404, b"Not Found", "text/plain")


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: SandboxState, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.state = state
        state.base_url = f"http://{host}:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up first (it timed out on a `slow` fault) is no sandbox error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        """What an Account's base_url should be: the service's own path layout."""
        return f"{self.state.base_url}/finder/v2/api"


def start_sandbox(
    *, port: int = 0, live_interval: float | None = None, demo_account: bool = False
) -> SandboxServer:
    """Serve a sandbox from a daemon thread; `server.shutdown()` stops it."""
    state = SandboxState(live_interval=live_interval)
    # Bound first: the demo accounts' scripted shares name covers at the server's address.
    server = SandboxServer(state, port=port)
    if demo_account:
        state.add_account(DEMO_APP_ID, DEMO_TOKEN)
        add_sister_account(state)
    threading.Thread(target=server.serve_forever, name="videosapi-sandbox", daemon=True).start()
    return server
