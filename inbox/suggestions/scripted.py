"""Scripted customer-service conversations (dev tooling: the demo's history and the quality
evaluation, never the product's code paths): questions viewers keep asking, each worded many ways,
with the answers the team gives them. A conversation is one topic: the viewer writes one
wording of its question (sometimes after a greeting, sometimes with an order number or a
product), and the team answers with one of the topic's answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "shipping time",
        (
            "什么时候发货？",
            "请问下单后多久能发出？",
            "我昨天拍的{product}啥时候能寄出来",
            "付款好几天了怎么还没发货",
            "今天下单今天能发吗",
            "老板，订单{order}发了没有？",
            "亲，几天内发货呀",
            "能不能早点给我发出去，着急用",
        ),
        (
            "亲，现货订单48小时内发货，发出后会有物流短信提醒您～",
            "您好，我们按付款顺序发货，一般1-2天内发出，请耐心等待哦",
        ),
    ),
    Topic(
        "refund",
        (
            "我想退款，怎么操作？",
            "不想要了可以退钱吗",
            "申请退款后多久到账？",
            "{product}不合适，能退吗",
            "退货退款流程是怎样的",
            "钱什么时候退回来",
            "我要退款！订单{order}",
            "已经寄回去了，退款怎么还没到",
        ),
        (
            "亲，在订单页点「申请售后」选择退货退款即可，我们收到退货后1-3个工作日内退款到原支付账户～",
            "您好，支持七天无理由退货，寄回后我们验收完成就会给您退款",
        ),
    ),
    Topic(
        "sizing",
        (
            "尺码偏大还是偏小？",
            "我身高165体重110斤穿什么码",
            "这件{product}码数准吗",
            "平时穿M，这款选哪个尺寸",
            "衣服是正码吗",
            "有尺码表吗？怕买错",
            "170cm 65kg 选L还是XL",
        ),
        (
            "亲，这款是标准码，按平时的尺码拍就可以，详情页有尺码表可以参考哦～",
            "您好，可以把身高体重发给我们，客服帮您推荐尺码",
        ),
    ),
    Topic(
        "coupon",
        (
            "直播间的优惠券怎么用？",
            "优惠券在哪里领",
            "领了券为什么下单没有减",
            "有没有优惠码",
            "满减券能和店铺券一起用吗",
            "刚才主播说的福利券怎么领不到",
            "现在买有折扣吗",
        ),
        (
            "优惠券在直播间右下角的「福利」里领取，下单时会自动抵扣哦～",
            "亲，领券后在结算页选择优惠券即可使用，店铺券和平台券可以叠加",
        ),
    ),
    Topic(
        "logistics",
        (
            "物流一直没有更新是怎么回事",
            "快递到哪了？",
            "查不到物流信息",
            "我的包裹好几天没动了",
            "订单{order}的快递单号是多少",
            "怎么显示已签收但我没收到",
            "物流停在中转站三天了",
        ),
        (
            "亲，麻烦提供一下订单号，我们马上帮您联系快递核实物流情况",
            "您好，已为您催促快递，物流信息可能有延迟，请再耐心等待一两天",
        ),
    ),
    Topic(
        "invoice",
        (
            "可以开发票吗？",
            "能开增值税专用发票吗",
            "发票怎么申请",
            "公司报销需要发票，怎么开",
            "买的{product}能给个电子发票吗",
            "发票抬头写公司名可以吗",
        ),
        ("可以的，在订单详情页点「申请开票」填写抬头和税号，电子发票会在3个工作日内发到您的邮箱",),
    ),
    Topic(
        "stock",
        (
            "你好，这款{product}还有现货吗？",
            "有货吗",
            "黑色的还有吗",
            "断货了什么时候补",
            "这个颜色卖完了吗",
            "大码还有库存吗",
            "会补货吗？一直显示缺货",
        ),
        (
            "您好，页面上能选的颜色和尺码都是有现货的，缺货的款我们会尽快补货～",
            "亲，这款暂时缺货，预计下周补货，可以先收藏关注哦",
        ),
    ),
    Topic(
        "exchange",
        (
            "收到的颜色和图片不一样，可以换吗",
            "尺码不对能换一个吗",
            "想换个颜色怎么弄",
            "发错货了",
            "{product}有瑕疵，能换新的吗",
            "换货要自己出运费吗",
        ),
        ("非常抱歉！请在订单页申请换货并上传照片，换货运费由我们承担",),
    ),
    Topic(
        "live schedule",
        (
            "直播几点开始？",
            "今晚有直播吗",
            "下一场直播是几点",
            "你们每天几点开播",
            "明天还播吗",
        ),
        ("我们每天晚上8点开播，关注主页就能收到开播提醒哦～",),
    ),
    Topic(
        "shipping abroad",
        (
            "Do you ship to Hong Kong?",
            "Can you deliver to Singapore?",
            "Is international shipping available?",
            "能寄到香港吗",
            "海外可以发货吗？我在新加坡",
            "Do you ship overseas?",
        ),
        (
            "Yes, we ship to Hong Kong, Macau, Taiwan and Singapore; delivery takes 5-7 days.",
            "可以的，港澳台和新加坡都能寄，一般5-7天送达",
        ),
    ),
    Topic(
        "quality",
        (
            "这个{product}质量怎么样",
            "是正品吗",
            "材质是什么的",
            "会不会掉色",
            "洗了会缩水吗",
            "是纯棉的吗",
        ),
        ("亲，我们家都是正品，支持专柜验货，材质和洗涤说明详情页都有写哦",),
    ),
    Topic(
        "address change",
        (
            "地址填错了能改吗",
            "下单后还能修改收货地址吗",
            "帮我改一下地址",
            "我搬家了，订单{order}能换个地址寄吗",
            "收件人电话写错了怎么办",
        ),
        ("亲，还没发货的话可以改，请把新的地址和电话发给我们，我们帮您修改",),
    ),
)

GREETINGS = ("你好", "在吗？", "您好", "亲", "hi", "老板在吗", "客服在吗", "请问")
PRODUCTS = ("保温杯", "围巾", "连衣裙", "卫衣", "羽绒服", "帆布包", "运动鞋", "T恤")
# Letters nobody has asked before, answered once: the distractors every real inbox has.
ONE_OFFS = (
    ("我是你们的老顾客了，能不能送个小礼物", "感谢支持！这次给您备注了小礼品～"),
    ("你们的店在哪个城市", "我们在杭州，仓库在义乌"),
    ("能帮我包装成礼物吗", "可以的，下单备注「礼物包装」就行"),
    ("主播穿的那件外套有链接吗", "在购物车第12号链接哦"),
    ("可以用花呗分期吗", "支持花呗分期，结算时选择即可"),
    ("你们招主播吗", "感谢关注，简历可以发到 hr@example.com"),
)


@dataclass(frozen=True)
class Exchange:
    topic: str
    question_index: int
    letters: tuple[str, ...]
    answer: str


def wording(rng: random.Random, template: str) -> str:
    return template.format(
        product=rng.choice(PRODUCTS),
        order=f"{rng.randrange(2024_01_01, 2024_12_31)}-{rng.randrange(1000, 9999)}",
    )


def exchange(rng: random.Random, questions: dict[str, list[int]] | None = None) -> Exchange:
    """One viewer's question (one to three letters) and the team's answer. `questions` limits
    each topic to some of its wordings (by index), as the evaluation's splits do."""
    if rng.random() < 0.08:
        question, answer = rng.choice(ONE_OFFS)
        return Exchange("one-off", -1, (question,), answer)
    topic = rng.choice(TOPICS)
    allowed = questions[topic.name] if questions else range(len(topic.questions))
    index = rng.choice(list(allowed))
    letters = [wording(rng, topic.questions[index])]
    if rng.random() < 0.3:
        letters.insert(0, rng.choice(GREETINGS))
    # The team's usual answer most of the time, the alternative now and then.
    answer = topic.answers[0] if len(topic.answers) == 1 or rng.random() < 0.7 else topic.answers[1]
    return Exchange(topic.name, index, tuple(letters), answer)
