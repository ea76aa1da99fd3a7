"""The demo merchant's catalogue: a department-store mix of categories and ~400 products.

Prices are lognormal around an item-specific level (so a phone costs more than a cable) with a
category-specific spread, then rounded to Chinese retail price points (29.90, 199.00, 1299.00).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class CategorySpec:
    external_id: str
    name: str
    name_en: str
    parent: str | None
    exempt: bool  # excluded from the 7-day no-reason return (PRC Consumer Rights Law Art. 25)
    products: int
    sigma: float  # lognormal spread of prices around each item's level
    popularity: float
    return_rate: float  # base probability that a line of this category is returned
    brands: tuple[str, ...]
    items: tuple[tuple[str, float], ...]  # (item, typical price in CNY)
    variants: tuple[str, ...]


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        "CAT01",
        "服装",
        "Apparel",
        None,
        False,
        60,
        0.35,
        1.6,
        0.16,
        ("简衣", "森屿", "栖木", "城南旧事", "MOCO轻奢"),
        (
            ("纯棉圆领短袖T恤", 79),
            ("修身弹力牛仔裤", 199),
            ("连帽休闲卫衣", 169),
            ("轻薄羽绒服", 499),
            ("真丝连衣裙", 459),
            ("羊毛针织开衫", 299),
            ("免烫商务衬衫", 189),
            ("冰丝防晒衣", 99),
            ("法式碎花半身裙", 159),
            ("加绒保暖打底衫", 69),
            ("双面羊绒大衣", 1299),
            ("宽松阔腿西裤", 229),
        ),
        ("", "", "黑色", "白色", "藏青", "燕麦色", "雾霾蓝", "2026新款"),
    ),
    CategorySpec(
        "CAT02",
        "鞋靴箱包",
        "Shoes & Bags",
        None,
        False,
        35,
        0.35,
        0.9,
        0.12,
        ("步履", "行者", "COCOBAG", "踏歌"),
        (
            ("透气运动跑鞋", 359),
            ("真皮商务皮鞋", 499),
            ("百搭小白鞋", 229),
            ("加绒雪地靴", 269),
            ("牛皮托特包", 699),
            ("双肩电脑包", 199),
            ("万向轮拉杆箱", 399),
            ("帆布单肩包", 89),
            ("软底乐福鞋", 289),
        ),
        ("", "", "黑色", "米白", "36-44码"),
    ),
    CategorySpec(
        "CAT03",
        "美妆护肤",
        "Beauty & Skincare",
        None,
        False,
        45,
        0.3,
        1.3,
        0.04,
        ("雪颜", "花西子研", "珀莱斯", "薇诺", "自然堂心"),
        (
            ("玻尿酸补水面膜10片", 99),
            ("烟酰胺亮肤精华", 259),
            ("氨基酸洁面乳", 69),
            ("持妆粉底液", 199),
            ("丝绒哑光口红", 129),
            ("防晒喷雾SPF50+", 89),
            ("修护晚霜", 329),
            ("卸妆水500ml", 79),
            ("眼部精华", 299),
            ("香水50ml", 459),
        ),
        ("", "", "旅行装", "礼盒装", "限定版"),
    ),
    CategorySpec(
        "CAT04",
        "数码",
        "Electronics",
        None,
        False,
        45,
        0.25,
        1.2,
        0.05,
        ("星途", "华讯", "极客派", "声悦", "易拍"),
        (
            ("5G智能手机 256GB", 2999),
            ("降噪蓝牙耳机", 499),
            ("65W氮化镓充电器", 129),
            ("Type-C数据线", 39),
            ("20000mAh充电宝", 149),
            ("智能手表", 999),
            ("14英寸轻薄笔记本", 4999),
            ("机械键盘", 369),
            ("无线鼠标", 99),
            ("平板电脑 11英寸", 2499),
            ("运动相机", 1799),
            ("手机壳", 49),
        ),
        ("", "", "黑色", "银色", "标准版", "Pro版"),
    ),
    CategorySpec(
        "CAT05",
        "家用电器",
        "Home Appliances",
        None,
        False,
        35,
        0.25,
        0.7,
        0.04,
        ("美厨", "清风", "格瑞", "小熊仔", "海川"),
        (
            ("扫地机器人", 1999),
            ("空气炸锅 5L", 299),
            ("变频空调 1.5匹", 2799),
            ("滚筒洗衣机 10kg", 2599),
            ("破壁料理机", 599),
            ("电热水壶", 129),
            ("吸尘器", 899),
            ("电饭煲 4L", 399),
            ("空气净化器", 1299),
            ("电吹风", 199),
        ),
        ("", "", "白色", "标准款", "智能款"),
    ),
    CategorySpec(
        "CAT06",
        "食品生鲜",
        "Fresh Food",
        None,
        True,
        40,
        0.3,
        1.2,
        0.02,
        ("鲜丰源", "农家乐", "海之味", "果然鲜", "牧场直送"),
        (
            ("阳光玫瑰葡萄 2斤", 69),
            ("赣南脐橙 5斤", 49),
            ("智利车厘子 2斤", 159),
            ("大闸蟹礼盒 8只", 399),
            ("鲜牛奶 1L×6", 59),
            ("草鸡蛋 30枚", 45),
            ("牛排套餐 10片", 199),
            ("三文鱼刺身 300g", 129),
            ("五常大米 10kg", 119),
            ("坚果礼盒", 139),
        ),
        ("", "", "顺丰冷链", "产地直发"),
    ),
    CategorySpec(
        "CAT07",
        "母婴",
        "Mother & Baby",
        None,
        False,
        30,
        0.3,
        0.8,
        0.04,
        ("贝亲宝", "小象", "童趣", "暖阳宝贝"),
        (
            ("婴儿纸尿裤 L码", 139),
            ("婴儿配方奶粉 3段", 299),
            ("宝宝辅食米粉", 59),
            ("婴儿推车", 1299),
            ("儿童安全座椅", 1599),
            ("婴儿湿巾 80抽×6", 49),
            ("宝宝连体衣", 89),
            ("吸奶器", 599),
        ),
        ("", "", "组合装", "新生儿款"),
    ),
    CategorySpec(
        "CAT08",
        "家居家装",
        "Home & Living",
        None,
        False,
        35,
        0.3,
        0.9,
        0.05,
        ("木语", "宜居", "棉麻时光", "北欧印象"),
        (
            ("全棉四件套", 299),
            ("记忆棉枕头", 129),
            ("蚕丝被", 699),
            ("收纳箱三件套", 79),
            ("实木床头柜", 459),
            ("落地灯", 199),
            ("不锈钢锅具套装", 499),
            ("浴巾", 59),
            ("人体工学椅", 899),
        ),
        ("", "", "灰色", "原木色", "1.8米床"),
    ),
    CategorySpec(
        "CAT09",
        "运动户外",
        "Sports & Outdoors",
        None,
        False,
        30,
        0.3,
        0.7,
        0.07,
        ("野狼", "跃动", "山野", "极速"),
        (
            ("瑜伽垫", 99),
            ("速干运动T恤", 89),
            ("户外冲锋衣", 599),
            ("登山杖", 129),
            ("双人帐篷", 459),
            ("可调哑铃 20kg", 399),
            ("跳绳", 39),
            ("骑行头盔", 259),
            ("羽毛球拍", 199),
        ),
        ("", "", "男款", "女款", "升级款"),
    ),
    CategorySpec(
        "CAT10",
        "图书音像",
        "Books & Media",
        None,
        False,
        25,
        0.25,
        0.6,
        0.02,
        ("人文出版社", "新知书局", "青蓝出版"),
        (
            ("中国通史（全六册）", 198),
            ("Python编程从入门到实践", 89),
            ("小王子（精装）", 39),
            ("三体（全三册）", 99),
            ("儿童绘本套装", 129),
            ("经典老歌黑胶唱片", 299),
            ("考研英语词汇", 49),
        ),
        ("", "", "典藏版", "2026版"),
    ),
    CategorySpec(
        "CAT11",
        "报纸期刊",
        "Newspapers & Periodicals",
        "CAT10",
        True,
        8,
        0.2,
        0.2,
        0.005,
        ("读者文摘社", "环球视野", "时尚芭莎社"),
        (("月刊年度订阅", 216), ("周刊半年订阅", 180), ("杂志单期", 20)),
        ("", ""),
    ),
    CategorySpec(
        "CAT12",
        "数字内容",
        "Digital Content",
        "CAT10",
        True,
        10,
        0.3,
        0.3,
        0.005,
        ("知学", "听书坊", "云课堂"),
        (("电子书", 29), ("有声书会员月卡", 19), ("在线课程", 199), ("视频会员年卡", 248)),
        ("", "", "兑换码"),
    ),
    CategorySpec(
        "CAT13",
        "定制商品",
        "Made to Order",
        None,
        True,
        12,
        0.3,
        0.3,
        0.015,
        ("匠心定制", "刻印坊", "私人订制"),
        (
            ("定制刻字钢笔", 199),
            ("定制照片台历", 79),
            ("定制西装", 1999),
            ("定制情侣对戒", 1299),
            ("定制T恤印花", 89),
        ),
        ("", "", "刻字款"),
    ),
)

CATEGORY_INDEX: dict[str, int] = {c.external_id: i for i, c in enumerate(CATEGORIES)}
FRESH = CATEGORY_INDEX["CAT06"]
MADE_TO_ORDER = CATEGORY_INDEX["CAT13"]
#: Categories whose goods are never shipped (delivered electronically).
DIGITAL = CATEGORY_INDEX["CAT12"]


@dataclass(frozen=True)
class Catalogue:
    """Products as parallel arrays (index = product number, external id ``P00001`` …)."""

    ids: list[str]
    names: list[str]
    category: NDArray[np.int64]
    price_cents: NDArray[np.int64]
    popularity: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)

    def in_category(self, cat: int) -> NDArray[np.int64]:
        """Product indices of category ``cat``, sorted by price."""
        idx = np.flatnonzero(self.category == cat)
        return idx[np.argsort(self.price_cents[idx], kind="stable")]


def retail_price_cents(value: float) -> int:
    """Round a raw price to a Chinese retail price point, in cents: 29.90, 199.00, 1299.00."""
    if value < 50:
        return max(990, round(value) * 100 - 10)
    if value < 1000:
        return (int(np.ceil(value / 10.0)) * 10 - 1) * 100
    return (int(np.ceil(value / 100.0)) * 100 - 1) * 100


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """Draw the products of every category (deterministic for a given generator state)."""
    ids: list[str] = []
    names: list[str] = []
    cats: list[int] = []
    prices: list[int] = []
    for ci, spec in enumerate(CATEGORIES):
        seen: set[str] = set()
        attempts = 0
        while len(seen) < spec.products and attempts < 50 * spec.products:
            attempts += 1
            brand = spec.brands[int(rng.integers(len(spec.brands)))]
            item, level = spec.items[int(rng.integers(len(spec.items)))]
            variant = spec.variants[int(rng.integers(len(spec.variants)))]
            name = f"{brand} {item}" + (f"（{variant}）" if variant else "")
            if name in seen:
                continue
            seen.add(name)
            ids.append(f"P{len(ids) + 1:05d}")
            names.append(name)
            cats.append(ci)
            prices.append(retail_price_cents(level * float(np.exp(rng.normal(0.0, spec.sigma)))))
    popularity = rng.lognormal(0.0, 1.0, size=len(ids))
    return Catalogue(
        ids=ids,
        names=names,
        category=np.asarray(cats, dtype=np.int64),
        price_cents=np.asarray(prices, dtype=np.int64),
        popularity=popularity,
    )
