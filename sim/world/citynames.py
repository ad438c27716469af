"""Plausible Chinese place and company names from syllable lists, with pinyin ids.

Every name is two syllables (a stem) plus a suffix that says what it names: 区 and 街道/镇 for
districts and subdistricts, 新村/苑/花园/华庭/村... for estates, 物业 for companies. Each syllable
carries its pinyin, so an estate named 虹华新村 gets the id ``honghua-xincun``. :class:`Namer` hands
out names and ids that are unique in their kind, drawing only from the Generator it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SYLLABLES", "Namer", "chinese_number"]

_TABLE = """
虹:hong 华:hua 桃:tao 浦:pu 康:kang 乐:le 安:an 平:ping 明:ming 光:guang 新:xin 春:chun
晨:chen 金:jin 宝:bao 龙:long 凤:feng 泰:tai 和:he 兴:xing 盛:sheng 德:de 福:fu 祥:xiang
瑞:rui 嘉:jia 松:song 江:jiang 梅:mei 兰:lan 竹:zhu 桂:gui 林:lin 枫:feng 柳:liu 杨:yang
樱:ying 莲:lian 东:dong 南:nan 西:xi 北:bei 中:zhong 长:chang 青:qing 碧:bi 云:yun 天:tian
海:hai 湖:hu 山:shan 泉:quan 溪:xi 滨:bin 港:gang 航:hang 博:bo 文:wen 景:jing 美:mei
丽:li 欣:xin 悦:yue 怡:yi 馨:xin 雅:ya 静:jing 宁:ning 丰:feng 田:tian 桥:qiao 阳:yang
晶:jing 锦:jin 绣:xiu 荣:rong 昌:chang 茂:mao 源:yuan 汇:hui 通:tong 达:da 建:jian 民:min
联:lian 友:you 红:hong 星:xing 曙:shu 凌:ling 兆:zhao 泗:si 塘:tang 闵:min 莘:xin 庄:zhuang
曹:cao 彭:peng 殷:yin 高:gao 徐:xu 凉:liang 城:cheng 泾:jing 周:zhou 渡:du 祁:qi 石:shi
榴:liu 紫:zi 藤:teng 白:bai 爱:ai 振:zhen 清:qing 永:yong 吉:ji 川:chuan 沙:sha 惠:hui
"""
SYLLABLES: tuple[tuple[str, str], ...] = tuple(
    (hz, py) for hz, py in (item.split(":") for item in _TABLE.split())
)
_DIGITS = "一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 23 -> 二十三 (1 to 99)."""
    if not 1 <= n <= 99:
        raise ValueError(f"{n}: only 1 to 99")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens - 1] + "十")
    return head + (_DIGITS[ones - 1] if ones else "")


class Namer:
    """Names and ids unique within a kind (``"estate"``, ``"company"``...)."""

    def __init__(self) -> None:
        self._names: dict[str, set[str]] = {}
        self._ids: dict[str, set[str]] = {}

    def stem(self, rng: np.random.Generator) -> tuple[str, str]:
        """Two different syllables: (``"虹华"``, ``"honghua"``)."""
        while True:
            i, j = rng.choice(len(SYLLABLES), size=2, replace=False)
            a, b = SYLLABLES[int(i)], SYLLABLES[int(j)]
            if a[1] != b[1]:  # not 清青 (qingqing)
                return a[0] + b[0], a[1] + b[1]

    def take(
        self, kind: str, rng: np.random.Generator, suffixes: Sequence[tuple[str, str]]
    ) -> tuple[str, str]:
        """A new (name, id): a stem and a suffix drawn from ``suffixes`` of (hanzi, pinyin);
        after 30 taken names, a later phase of the last one (莲花苑二期, ``lianhua-yuan-2``)."""
        names = self._names.setdefault(kind, set())
        for _ in range(30):
            hz, py = self.stem(rng)
            shz, spy = suffixes[int(rng.integers(len(suffixes)))]
            if hz + shz not in names:
                return self.claim(kind, hz + shz, py, f"-{spy}" if spy else "")
        phase = 2
        while f"{hz}{shz}{chinese_number(phase)}期" in names:
            phase += 1
        return self.claim(kind, f"{hz}{shz}{chinese_number(phase)}期", py, f"-{spy}-{phase}")

    def free(self, kind: str, name: str) -> bool:
        return name not in self._names.get(kind, set())

    def claim(self, kind: str, name: str, stem: str, tail: str = "") -> tuple[str, str]:
        """Record ``name`` and return it with the id ``stem + tail``; when another name took that
        id (柳晶村 and 榴景村 are both ``liujing-cun``), a number follows the stem:
        ``liujing2-cun`` (``aibo1-2`` after a stem that ends in a digit)."""
        self._names.setdefault(kind, set()).add(name)
        ids = self._ids.setdefault(kind, set())
        out, k = stem + tail, 2
        sep = "-" if stem[-1:].isdigit() else ""
        while out in ids:
            out, k = f"{stem}{sep}{k}{tail}", k + 1
        ids.add(out)
        return name, out
