"""The data set `benchmark_inbox` measures: a busy seller's year of private letters, built through
the real ingestion path.

Letters are synthetic syncPrivateLetterMsg items (the sandbox's `letter_item`), parsed by
`parse_sync_page` and stored by `store_page` under a real lease, a page of 1,000 at a time in the
order the upstream would deliver them (oldest first), exactly what the worker does per page.
Statuses, assignments, notes and reads then go through `inbox.services`, so every denormalised
figure the services keep is kept here too.

Shape (issue 9): sessions are skewed (most 2-20 letters, a few of 5,000-12,000); 70% of letters
are Chinese text made from shop phrases (so a two-character term such as 发货 is in about one in
ten letters), 20% images (MsgType 3 XML), the rest app messages, system notices, recalls, voice,
stickers, video and contact cards; create times span a year; both directions; agents are members
of one or more accounts. A few rare terms are planted so that search has rare hits to find.

Safety: the database is marked as this data set's with a table of its own, created only in a
database that holds no accounts, messages or users. A database without the mark, or marked with
other parameters, is refused. Everything is deterministic (seeded), and each stage records its
progress in the mark, so a rerun with the same parameters reuses what is built and an interrupted
build resumes where it stopped.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import APP_XML, IMAGE_XML, finder_name, letter_item, session_id_for
from inbox import services
from inbox.models import Message, Session
from inbox.payloads import parse_sync_page
from inbox.sync import account_lease, store_page

MARKER_TABLE = "benchmark_inbox_dataset"
PAGE_SIZE = 1000
SESSION_DAYS = 365
# The account every timed request is made as: a member of every account, like a team lead.
TIMING_AGENT = "bench-agent-1"
BIG_SESSION_SIZES = (12_000, 9_000, 7_000, 5_500, 10_000)
# Planted terms and how often a text letter carries one: rare hits for the search table.
RARE_TERMS = ("紫砂壶", "翡翠手镯", "退税", "鑫", "invoice")
RARE_RATE = 0.0003
NOTE_TEXTS = (
    "客户说{product}有划痕，已让仓库补发",
    "这位客户要求七天无理由退货，已同意",
    "VIP 客户，优先处理",
    "物流异常，已联系快递",
)

Progress = Callable[[str, int], Callable[[int], None]]
"""progress(stage description, total) → advance(n): how a command shows the build's progress."""


class NotOurDatabase(Exception):
    """The database holds data this builder did not make, or a data set with other parameters."""


@dataclass(frozen=True)
class DatasetSpec:
    messages: int = 1_000_000
    sessions: int = 100_000
    accounts: int = 3
    seed: int = 9

    def validate(self) -> None:
        if self.accounts < 1 or self.sessions < self.accounts:
            raise ValueError("need at least one account and one session per account")
        if self.messages < 2 * self.sessions:
            raise ValueError("need at least two messages per session")


@dataclass
class SessionPlan:
    index: int
    account: int
    size: int
    msg_session_id: str
    peer: str


@dataclass
class Plan:
    """Which session gets how many letters, on which account: the skeleton of the data set."""

    spec: DatasetSpec
    end: int  # epoch seconds of the newest letter: fixed when the set is first built
    sessions: list[SessionPlan] = field(default_factory=list)

    def shop(self, account: int) -> str:
        return finder_name(f"bench-shop-{account}")

    def app_id(self, account: int) -> str:
        return f"bench-shop-{account}"

    def sessions_of_size(self, size: int) -> list[SessionPlan]:
        return [s for s in self.sessions if s.size == size]

    def biggest(self) -> SessionPlan:
        return max(self.sessions, key=lambda s: s.size)


# --- the mark --------------------------------------------------------------------------------


def _marker_exists() -> bool:
    return MARKER_TABLE in connection.introspection.table_names()


def read_marker() -> dict | None:
    """The mark's parameters and progress, or None when this is not a benchmark database."""
    if not _marker_exists():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state FROM {MARKER_TABLE}")
        row = cursor.fetchone()
    return json.loads(row[0]) if row else None


def _write_marker(state: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {MARKER_TABLE} SET state = %s", [json.dumps(state)])


def claim_database(spec: DatasetSpec) -> dict:
    """Mark an empty database as this data set's, or check an existing mark; the state."""
    state = read_marker()
    if state is not None:
        if state["spec"] != asdict(spec):
            raise NotOurDatabase(
                f"this database holds a benchmark data set built with {state['spec']}, not "
                f"{asdict(spec)}: use those parameters or a fresh database"
            )
        return state
    if Account.objects.exists() or Message.objects.exists() or get_user_model().objects.exists():
        raise NotOurDatabase(
            "this database has data the benchmark did not create; benchmark_inbox only builds "
            "in an empty database (createdb a fresh one and migrate it)"
        )
    state = {
        "spec": asdict(spec),
        "end": int(timezone.now().timestamp()),
        "pages": {},
        "stages": [],
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {MARKER_TABLE} (state TEXT NOT NULL)")
        cursor.execute(f"INSERT INTO {MARKER_TABLE} (state) VALUES (%s)", [json.dumps(state)])
    return state


# --- the plan --------------------------------------------------------------------------------


def make_plan(spec: DatasetSpec, end: int) -> Plan:
    rng = random.Random(spec.seed)
    plan = Plan(spec=spec, end=end)
    sizes = _session_sizes(spec, rng)
    # Accounts are unequal too: the first takes about half of the conversations.
    weights = [2 ** (spec.accounts - n) for n in range(spec.accounts)]
    for index, size in enumerate(sizes):
        # Round-robin first, so every account has sessions however small the set.
        account = index if index < spec.accounts else rng.choices(range(spec.accounts), weights)[0]
        peer = finder_name(f"bench-peer-{index}")
        plan.sessions.append(
            SessionPlan(
                index=index,
                account=account,
                size=size,
                msg_session_id=session_id_for(plan.shop(account), peer),
                peer=peer,
            )
        )
    return plan


def _session_sizes(spec: DatasetSpec, rng: random.Random) -> list[int]:
    """A few huge sessions (5,000-12,000 letters at a million, scaled down for small sets), the
    rest 2-20 letters, summing exactly to spec.messages."""
    scale = min(1.0, spec.messages / 1_000_000)
    big_count = max(1, min(len(BIG_SESSION_SIZES), spec.messages // 200_000))
    big = [max(21, round(size * scale)) for size in BIG_SESSION_SIZES[:big_count]]
    small_count = spec.sessions - big_count
    budget = spec.messages - sum(big)
    if small_count < 1 or budget < 2 * small_count:
        raise ValueError("too few messages for that many sessions")
    mean = budget / small_count
    mode = min(20.0, max(2.0, 3 * mean - 22))  # a triangular distribution's mean is its corners'
    sizes = [round(rng.triangular(2, 20, mode)) for _ in range(small_count)]
    # Nudge sizes one letter at a time until they sum to the budget; a session over 20 takes
    # the surplus when the small ones cannot.
    difference = budget - sum(sizes)
    step = 1 if difference > 0 else -1
    order = list(range(small_count))
    rng.shuffle(order)
    position = 0
    for _ in range(abs(difference)):
        while True:
            index = order[position % small_count]
            position += 1
            if 2 <= sizes[index] + step <= 20 or position > 40 * small_count:
                break
        sizes[index] += step
    if sum(sizes) != budget:
        big[-1] += budget - sum(sizes)
    return big + sizes


# --- letters ---------------------------------------------------------------------------------


PRODUCTS = (
    "保温杯",
    "连衣裙",
    "运动鞋",
    "口红",
    "面膜",
    "蓝牙音箱",
    "羽绒服",
    "茶叶",
    "咖啡豆",
    "手机壳",
    "电饭煲",
    "瑜伽垫",
    "儿童绘本",
    "行李箱",
    "空气炸锅",
    "护手霜",
    "毛衣",
    "围巾",
    "台灯",
    "枕头",
)
PRODUCT_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(PRODUCTS)))
INCOMING = (
    ("你好，请问这款{product}还有货吗？", 8),
    ("老板，什么时候发货呀？", 2),
    ("已经下单了，麻烦尽快发货，谢谢！", 2),
    ("我昨天买的{product}尺码不对，可以换吗？\n订单号 {order}", 4),
    ("直播间说的优惠券在哪里领？", 4),
    ("收到货了，质量很好 👍", 4),
    ("物流好像一直没有更新……麻烦帮忙查一下，谢谢！", 4),
    ("请问可以开发票吗？", 2),
    ("这个颜色还有别的尺码吗？", 3),
    ("在吗？想咨询一下{product}", 5),
    ("直播什么时候开始？", 3),
    ("{product}有优惠吗？买两件能便宜点吗", 3),
    ("怎么还没发货？都三天了", 1),
    ("可以发顺丰吗？", 2),
    ("Hi, do you ship to Singapore?", 1),
    ("Is there a discount for two?", 1),
    ("Where is my parcel? Order {order}", 1),
)
OUTGOING = (
    ("您好！有货的，今天下单明天发货～", 2),
    ("亲，已经为您催促仓库了，48小时内发货", 1),
    ("可以的，请在订单页申请换货，运费我们承担。详情见 https://example.com/help/exchange", 3),
    ("优惠券在直播间右下角的「福利」里～", 3),
    ("您的订单已发出，单号 SF{order}，请注意查收", 4),
    ("好的，{product}给您备注了", 4),
    ("亲，这款{product}是现货，付款后尽快发货", 1),
    ("不客气，有问题随时联系我们😊", 5),
    ("Yes, we ship to Singapore. Delivery takes 5-7 days.", 1),
)
OTHER_TYPES = (  # (MsgType, weight): the 10% of letters that are neither text nor images
    (49, 3),
    (10000, 2),
    (10002, 1),
    (34, 2),
    (47, 1),
    (43, 0.5),
    (42, 0.5),
)
NICKNAME_FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
NICKNAME_GIVEN = ("小明", "晓燕", "阿姨的花店", "同学", "先生", "丽丽", "大伟", "静", "芳", "小鹿")
NICKNAME_LATIN = ("Lily 🌸", "Tom Zhang", "Anna", "Kevin", "Momo")


class LetterMaker:
    """The content of each letter, drawn from one seeded generator in delivery order."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed * 7919 + 1)
        self.incoming = [text for text, _ in INCOMING]
        self.incoming_weights = [weight for _, weight in INCOMING]
        self.outgoing = [text for text, _ in OUTGOING]
        self.outgoing_weights = [weight for _, weight in OUTGOING]

    def letter(self, *, is_sender: bool, new_msg_id: int) -> tuple[int, str]:
        """(MsgType, content) for the next letter."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.7:
            return 1, self._text(is_sender)
        if kind < 0.9:
            md5 = f"{new_msg_id:032x}"[-32:]
            return 3, IMAGE_XML.format(
                key=md5,
                url=f"3057020100044b3049{md5}",
                width=120,
                height=rng.choice((90, 120, 160)),
                thumb_length=1315,
                length=22001,
                hd_length=1096,
                md5=md5,
            )
        msg_type = rng.choices([t for t, _ in OTHER_TYPES], [w for _, w in OTHER_TYPES])[0]
        return msg_type, self._other(msg_type)

    def _text(self, is_sender: bool) -> str:
        rng = self.rng
        if is_sender:
            template = rng.choices(self.outgoing, self.outgoing_weights)[0]
        else:
            template = rng.choices(self.incoming, self.incoming_weights)[0]
        text = template.format(
            product=rng.choices(PRODUCTS, PRODUCT_WEIGHTS)[0],
            order=f"{rng.randrange(2024_01_01, 2024_12_31)}-{rng.randrange(1000, 9999)}",
        )
        if rng.random() < RARE_RATE * len(RARE_TERMS):
            text += f" {rng.choice(RARE_TERMS)}"
        return text

    def _other(self, msg_type: int) -> str:
        rng = self.rng
        if msg_type == 49:
            if rng.random() < 0.7:
                return APP_XML.format(
                    title=f"{rng.choice(PRODUCTS)} 新品上架",
                    des="",
                    type=51,
                    url="https://channels.weixin.qq.com/",
                )
            return APP_XML.format(
                title="618 活动说明",
                des="点击查看活动规则",
                type=5,
                url="https://example.com/618",
            )
        if msg_type == 10000:
            return "你已添加了对方，现在可以开始聊天了。"
        if msg_type == 10002:
            return '"对方" 撤回了一条消息'
        if msg_type == 34:
            length = rng.randrange(1000, 60000)
            return f'<msg><voicemsg voicelength="{length}" length="5120" /></msg>'
        if msg_type == 47:
            return '<msg><emoji md5="0d1a5c" len="2048" /></msg>'
        if msg_type == 43:
            return '<msg><videomsg length="1048576" playlength="12" /></msg>'
        return '<msg username="v2_card@finder" nickname="推荐的店铺" />'


def _letter_times(plan: Plan, rng: random.Random) -> list[int]:
    """Every letter as one sortable int, (create time << bits) | session index, oldest first."""
    bits = max(17, len(plan.sessions).bit_length())
    year = SESSION_DAYS * 86_400
    start = plan.end - year
    keys: list[int] = []
    for session in plan.sessions:
        if session.size > 20:
            # A long-running conversation: letters all through the year.
            times = sorted(rng.randrange(start, plan.end) for _ in range(session.size))
        else:
            moment = rng.randrange(start, plan.end - 3600)
            times = []
            for _ in range(session.size):
                times.append(min(moment, plan.end))
                moment += int(rng.expovariate(1 / 600)) + 1
        keys.extend((moment << bits) | session.index for moment in times)
    keys.sort()
    return keys


def letter_pages(plan: Plan) -> Iterator[tuple[int, int, list[dict]]]:
    """(account, page number, items) in delivery order, pages of PAGE_SIZE per account."""
    rng = random.Random(plan.spec.seed + 1)
    keys = _letter_times(plan, rng)
    bits = max(17, len(plan.sessions).bit_length())
    mask = (1 << bits) - 1
    maker = LetterMaker(plan.spec.seed)
    written = [0] * len(plan.sessions)
    buffers: list[list[dict]] = [[] for _ in range(plan.spec.accounts)]
    page_numbers = [0] * plan.spec.accounts
    for number, key in enumerate(keys):
        session = plan.sessions[key & mask]
        create_time = key >> bits
        position = written[session.index]
        written[session.index] += 1
        # A conversation starts with the viewer; after that the shop answers about 40% of it.
        is_sender = position > 0 and maker.rng.random() < 0.4
        new_msg_id = 10**18 + number
        msg_type, content = maker.letter(is_sender=is_sender, new_msg_id=new_msg_id)
        shop = plan.shop(session.account)
        buffers[session.account].append(
            letter_item(
                seq=number + 1,
                new_msg_id=new_msg_id,
                me=shop,
                peer=session.peer,
                is_sender=is_sender,
                msg_type=msg_type,
                content=content,
                create_time=create_time,
                msg_session_id=session.msg_session_id,
                msg_source="<msgsource><bizflag>0</bizflag></msgsource>",
            )
        )
        if len(buffers[session.account]) == PAGE_SIZE:
            page_numbers[session.account] += 1
            yield session.account, page_numbers[session.account], buffers[session.account]
            buffers[session.account] = []
    for account, items in enumerate(buffers):
        if items:
            page_numbers[account] += 1
            yield account, page_numbers[account], items


# --- building --------------------------------------------------------------------------------


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class BuildReport:
    reused: bool
    messages: int
    sessions: int
    pages_stored: int = 0


def build(spec: DatasetSpec, progress: Progress = _no_progress) -> tuple[Plan, BuildReport]:
    """Build (or resume, or reuse) the data set in the connected database."""
    spec.validate()
    state = claim_database(spec)
    plan = make_plan(spec, state["end"])
    reused = set(state["stages"]) >= {"letters", "nicknames", "workflow"}
    pages_stored = 0
    if "letters" not in state["stages"]:
        pages_stored = _store_letters(plan, state, progress)
        state["stages"].append("letters")
        _write_marker(state)
    if "nicknames" not in state["stages"]:
        _name_peers(plan, progress)
        state["stages"].append("nicknames")
        _write_marker(state)
    if "workflow" not in state["stages"]:
        _work_on_sessions(plan, progress)
        state["stages"].append("workflow")
        _write_marker(state)
    return plan, BuildReport(
        reused=reused,
        messages=Message.objects.count(),
        sessions=Session.objects.count(),
        pages_stored=pages_stored,
    )


def accounts_and_agents(plan: Plan) -> tuple[list[Account], list]:
    """The accounts (bench-shop-N) and agents: agent 1 works on every account, the others on one
    or two each."""
    accounts = []
    for number in range(plan.spec.accounts):
        account, _ = Account.objects.get_or_create(
            app_id=plan.app_id(number),
            defaults={"name": f"Bench shop {number + 1}", "token": f"bench-token-{number}"},
        )
        accounts.append(account)
    User = get_user_model()
    agents = []
    for number in range(1, 7):
        agent, created = User.objects.get_or_create(
            username=f"bench-agent-{number}", defaults={"first_name": f"客服{number}"}
        )
        if created:
            agent.set_unusable_password()
            agent.save(update_fields=["password"])
            count = len(accounts) if number == 1 else number % 2 + 1
            works_on = [accounts[(number + offset) % len(accounts)] for offset in range(count)]
            agent.finder_accounts.add(*works_on)
        agents.append(agent)
    return accounts, agents


def _store_letters(plan: Plan, state: dict, progress: Progress) -> int:
    accounts, _ = accounts_and_agents(plan)
    done = {int(account): pages for account, pages in state["pages"].items()}
    advance = progress("letters through store_page", plan.spec.messages)
    stored = 0
    for account_number, page_number, items in letter_pages(plan):
        if page_number <= done.get(account_number, 0):
            advance(len(items))
            continue
        account = accounts[account_number]
        expected = Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)
        page = parse_sync_page({"list": items, "keyBuff": f"bench:{page_number}"})
        with account_lease(account) as lease:
            store_page(account, page, lease_token=lease, expected=expected)
        done[account_number] = page_number
        state["pages"] = {str(k): v for k, v in done.items()}
        _write_marker(state)
        stored += 1
        advance(len(items))
    return stored


def _name_peers(plan: Plan, progress: Progress) -> None:
    """Peer nicknames, as the contactList backfill stores them: one UPDATE per name."""
    rng = random.Random(plan.spec.seed + 2)
    by_name: dict[str, list[str]] = {}
    for session in plan.sessions:
        if rng.random() < 0.1:
            continue  # the upstream did not know this peer
        if rng.random() < 0.1:
            name = rng.choice(NICKNAME_LATIN)
        else:
            name = rng.choice(NICKNAME_FAMILY) + rng.choice(NICKNAME_GIVEN)
        by_name.setdefault(name, []).append(session.msg_session_id)
    advance = progress("peer nicknames", len(by_name))
    for name, session_ids in by_name.items():
        for start in range(0, len(session_ids), 5000):
            Session.objects.filter(msg_session_id__in=session_ids[start : start + 5000]).update(
                peer_nickname=name
            )
        advance(1)


def _work_on_sessions(plan: Plan, progress: Progress) -> None:
    """What a team did over the year, through the services: statuses, assignments, notes, and
    every conversation whose last letter is more than a week old read."""
    _, agents = accounts_and_agents(plan)
    members: dict[int, list] = {}
    for agent in agents:
        for account_id in agent.finder_accounts.values_list("pk", flat=True):
            members.setdefault(account_id, []).append(agent)
    rng = random.Random(plan.spec.seed + 3)
    read_before = datetime.fromtimestamp(plan.end, UTC) - timedelta(days=7)
    snooze_until = datetime.fromtimestamp(plan.end, UTC) + timedelta(days=3650)
    session_ids = list(Session.objects.order_by("pk").values_list("pk", flat=True))
    advance = progress("statuses, assignments, notes, reads", len(session_ids))
    for session in _in_batches(session_ids):
        team = members[session.account_id]
        actor = rng.choice(team)
        roll = rng.random()
        if roll < 0.10:
            services.set_status(session, Session.Status.RESOLVED, actor)
        elif roll < 0.13:
            services.set_status(session, Session.Status.PENDING, actor)
        elif roll < 0.135:
            services.set_status(session, Session.Status.SNOOZED, actor, snooze_until=snooze_until)
        if rng.random() < 0.12:
            services.assign(session, rng.choice(team), actor)
        if rng.random() < 0.005:
            text = rng.choice(NOTE_TEXTS).format(product=rng.choice(PRODUCTS))
            token = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-note-{session.msg_session_id}")
            services.add_note(session, actor, text, token)
        if session.last_message_at < read_before or rng.random() < 0.5:
            services.mark_read(session)
        advance(1)


def _in_batches(session_ids: list[int], size: int = 1000) -> Iterator[Session]:
    # Batches by primary key rather than a server-side cursor: the services write as we read.
    for start in range(0, len(session_ids), size):
        yield from Session.objects.filter(pk__in=session_ids[start : start + size]).order_by("pk")
