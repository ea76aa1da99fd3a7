"""Review sentiment, offline: a hand-built lexicon over jieba tokens, for Chinese and basic
English.

The method is the lexicon-and-rules family of VADER (Hutto & Gilbert, "VADER: A Parsimonious
Rule-based Model for Sentiment Analysis of Social Media Text", ICWSM 2014), cut down and moved
to Chinese: every sentiment word carries a weight; a negator shortly before it flips it (times
0.74, VADER's constant), an intensifier before it scales it, a contrast word (但是, but) halves
what came before it in the sentence and lifts what follows, and the sum ``s`` is squashed into
[-1, 1] by ``s / sqrt(s² + α)``. No model, no download: the lexicon below is data, written for
the words shoppers use in reviews (the demo merchant's review phrases included).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

# --- Lexicon -------------------------------------------------------------------------------------
#: Positive words and phrases with their weight (1 = plainly positive).
POSITIVE: dict[str, float] = {
    # satisfaction and recommendation
    "满意": 1.5,
    "好评": 1.8,
    "五星": 1.5,
    "五星好评": 2.2,
    "超出预期": 2.0,
    "物超所值": 2.0,
    "喜欢": 1.5,
    "棒": 1.8,
    "太棒了": 2.2,
    "赞": 1.5,
    "点赞": 1.5,
    "不错": 1.2,
    "挺好": 1.2,
    "好": 1.0,
    "很好": 1.5,
    "可以": 0.4,
    "还行": 0.4,
    "值得": 1.2,
    "值": 0.8,
    "推荐": 1.3,
    "回购": 1.5,
    "下次还来": 1.5,
    "完美": 2.0,
    "惊喜": 1.5,
    "开心": 1.3,
    "放心": 1.2,
    "省心": 1.2,
    "划算": 1.2,
    "实惠": 1.0,
    "性价比高": 1.5,
    "性价比很高": 1.8,
    "感谢": 1.0,
    "谢谢": 0.8,
    # quality and experience
    "舒服": 1.2,
    "舒适": 1.2,
    "好看": 1.2,
    "漂亮": 1.2,
    "精细": 1.0,
    "精致": 1.2,
    "精美": 1.2,
    "扎实": 1.0,
    "结实": 1.0,
    "耐用": 1.0,
    "实用": 1.0,
    "方便": 1.0,
    "流畅": 1.0,
    "清晰": 0.8,
    "专业": 1.0,
    "温和": 0.8,
    "水润": 1.0,
    "正品": 1.0,
    "正版": 1.0,
    "好闻": 1.0,
    "好吃": 1.2,
    "新鲜": 1.0,
    "甜": 0.6,
    "足": 0.6,
    "安全": 0.6,
    "百搭": 0.8,
    "轻便": 0.8,
    "精彩": 1.2,
    "完好": 1.0,
    "按时": 0.8,
    "充实": 0.8,
    "有帮助": 1.0,
    "帮助": 0.5,
    "有面子": 1.0,
    "明显": 0.3,
    "标准": 0.5,
    # delivery and service
    "快": 0.8,
    "很快": 1.2,
    "迅速": 1.0,
    "及时": 0.8,
    "负责": 1.0,
    "严实": 0.8,
    "耐心": 1.0,
    "热情": 1.0,
    "周到": 1.0,
    "送货上门": 0.8,
    # English
    "good": 1.0,
    "great": 1.5,
    "excellent": 2.0,
    "perfect": 2.0,
    "love": 1.8,
    "like": 0.8,
    "nice": 1.2,
    "happy": 1.3,
    "satisfied": 1.5,
    "recommend": 1.3,
    "fast": 0.8,
    "quick": 0.8,
    "beautiful": 1.2,
    "comfortable": 1.2,
    "awesome": 1.8,
    "amazing": 1.8,
    "worth": 1.0,
    "thanks": 0.8,
}
#: Negative words and phrases with their weight (positive number; the sign is applied later).
NEGATIVE: dict[str, float] = {
    # dissatisfaction
    "失望": 1.8,
    "差评": 2.0,
    "差": 1.5,
    "太差": 2.0,
    "后悔": 1.8,
    "一般": 0.4,
    "一般般": 0.5,
    "凑合": 0.5,
    "别买": 2.0,
    "不推荐": 1.5,
    "不会再买": 1.8,
    "再也不会": 1.5,
    "性价比不高": 1.0,
    "不值": 1.2,
    "不满": 1.5,
    "生气": 1.5,
    "无语": 1.2,
    "坑": 1.5,
    "坑人": 1.8,
    "骗": 1.8,
    "骗子": 2.0,
    "上当": 1.5,
    "垃圾": 2.0,
    "黑心": 1.8,
    "恶劣": 1.8,
    "态度恶劣": 2.0,
    "破": 0.8,
    "假": 1.2,
    "假货": 2.0,
    "盗版": 1.5,
    "倒闭": 1.2,
    "投诉": 1.2,
    "说法": 0.6,
    "退货": 0.5,
    "退款": 0.3,
    "不服": 0.8,
    "托": 0.5,
    # defects
    "坏": 1.5,
    "坏了": 1.5,
    "破损": 1.2,
    "损坏": 1.5,
    "压坏": 1.2,
    "起球": 1.0,
    "开胶": 1.2,
    "异味": 1.0,
    "刺鼻": 1.2,
    "甲醛": 1.2,
    "磨脚": 1.0,
    "过敏": 1.2,
    "长痘": 1.0,
    "漏液": 1.0,
    "划痕": 1.0,
    "二手": 1.0,
    "凹陷": 1.0,
    "烂": 1.2,
    "变质": 1.5,
    "缺斤少两": 1.5,
    "不足": 0.8,
    "粗糙": 1.0,
    "毛刺": 0.8,
    "不符": 1.0,
    "不准": 0.8,
    "不对": 0.8,
    "偏小": 0.6,
    "偏大": 0.6,
    "紧": 0.4,
    "薄": 0.5,
    "模糊": 0.8,
    "缺页": 1.0,
    "错别字": 1.0,
    "无效": 1.2,
    "故障": 1.2,
    "失灵": 1.2,
    "线头": 0.5,
    "折角": 0.5,
    "刺激": 0.6,
    "红屁屁": 0.8,
    "噪音": 0.6,
    "差别": 0.6,
    "差距": 0.6,
    "色差": 0.8,
    "瑕疵": 0.8,
    "没效果": 1.2,
    "没什么效果": 1.2,
    "充不进电": 1.2,
    "淋湿": 0.8,
    "断": 0.6,
    # delivery and service
    "慢": 1.0,
    "太慢": 1.5,
    "晚": 0.6,
    "延误": 1.2,
    "拖": 0.8,
    "久": 0.5,
    "很久": 0.8,
    "没人通知": 1.0,
    "不更新": 0.8,
    # English
    "bad": 1.5,
    "poor": 1.5,
    "terrible": 2.0,
    "awful": 2.0,
    "horrible": 2.0,
    "worst": 2.2,
    "broken": 1.5,
    "damaged": 1.5,
    "disappointed": 1.8,
    "disappointing": 1.8,
    "hate": 1.8,
    "slow": 1.0,
    "late": 0.8,
    "fake": 1.8,
    "scam": 2.0,
    "refund": 0.3,
    "defective": 1.5,
    "useless": 1.5,
    "waste": 1.5,
}
#: Words that flip the sentiment of the next sentiment word in the same clause.
NEGATORS: frozenset[str] = frozenset(
    {
        "不",
        "没",
        "没有",
        "无",
        "未",
        "别",
        "不是",
        "并不",
        "从不",
        "毫不",
        "毫无",
        "不怎么",
        "说不上",
        "谈不上",
        "not",
        "no",
        "never",
        "without",
        "hardly",
    }
)
#: Words that scale the next sentiment word: above 1 strengthen, below 1 soften.
INTENSIFIERS: dict[str, float] = {
    "很": 1.3,
    "非常": 1.6,
    "太": 1.5,
    "特别": 1.5,
    "超": 1.5,
    "超级": 1.6,
    "十分": 1.5,
    "极其": 1.8,
    "极": 1.6,
    "真": 1.3,
    "真的": 1.3,
    "挺": 1.1,
    "蛮": 1.1,
    "比较": 0.9,
    "还": 0.8,
    "有点": 0.6,
    "有些": 0.6,
    "稍微": 0.5,
    "略": 0.6,
    "一点": 0.6,
    "very": 1.3,
    "really": 1.3,
    "so": 1.3,
    "extremely": 1.8,
    "super": 1.5,
    "too": 1.3,
    "quite": 1.1,
    "slightly": 0.5,
    "somewhat": 0.6,
}
#: Words after which the sentence turns: what came before counts half, what follows 1.5 times.
CONTRASTS: frozenset[str] = frozenset({"但是", "但", "可是", "不过", "然而", "but", "however"})
#: Words that contain a sentiment character but carry none: kept whole so that 好 in 好几天
#: is not read as "good".
NEUTRAL: frozenset[str] = frozenset(
    {"好几", "好几天", "好几个", "好多", "好像", "说好", "只好", "还好"}
)
#: Particles peeled off a token's end before looking it up (太棒了 → 太棒, 坏了 → 坏).
_PARTICLES = ("了", "的", "啊", "呀", "吧", "啦", "哦", "呢")
#: Characters that end a clause: a negator or intensifier does not reach past them.
_CLAUSE_END = frozenset("，,。.！!？?；;：:\n、~～…")

NEGATION = -0.74  # VADER's N_SCALAR
ALPHA = 4.0  # squashing constant, for weights around 1 (VADER uses 15 for weights up to 4)
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.5
_NEGATION_REACH = 3  # a negator reaches the sentiment word at most this many tokens on

_WEIGHTS: dict[str, float] = {**POSITIVE, **{w: -v for w, v in NEGATIVE.items()}}
_MODIFIERS = sorted(NEGATORS | set(INTENSIFIERS), key=len, reverse=True)
_ENGLISH_NOT = re.compile(r"n['’]t\b", re.IGNORECASE)

_lock = threading.Lock()
_tokenizer: Any = None


def _jieba() -> Any:
    """A private jieba tokenizer with the lexicon added, built once on first use, quietly."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                with warnings.catch_warnings():
                    # jieba 0.42 has invalid escape sequences that warn when it is compiled.
                    warnings.simplefilter("ignore", SyntaxWarning)
                    import jieba
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in (*_WEIGHTS, *NEGATORS, *INTENSIFIERS, *CONTRASTS, *NEUTRAL):
                    if not word.isascii():
                        tokenizer.add_word(word, freq=100_000)
                _tokenizer = tokenizer
    return _tokenizer


def tokens(text: str) -> list[str]:
    """Lower-cased jieba tokens without blanks; English "n't" becomes "not"."""
    text = _ENGLISH_NOT.sub(" not", text.lower())
    return [t for t in _jieba().lcut(text, HMM=False) if t.strip()]


def _split(token: str) -> list[str]:
    """A token the lexicon doesn't know, split into known modifiers and a known word when it
    can be: 很甜 → 很 甜, 太慢了 → 太慢, 不好 → 不 好. Otherwise the token itself."""
    if token in _WEIGHTS or token in NEGATORS or token in INTENSIFIERS:
        return [token]
    for particle in _PARTICLES:
        if len(token) > 1 and token.endswith(particle):
            stem = token[: -len(particle)]
            if stem in _WEIGHTS:
                return [stem]
    for modifier in _MODIFIERS:
        if len(token) > len(modifier) and token.startswith(modifier):
            rest = _split(token[len(modifier) :])
            if rest[-1] in _WEIGHTS:
                return [modifier, *rest]
    return [token]


def _score(words: Iterable[str]) -> float:
    total = 0.0
    sentence = 0.0  # this sentence so far, until a contrast word or a full stop
    scale = 1.0  # what a contrast word did to the rest of the sentence
    negated_at: int | None = None
    intensity = 1.0
    for index, word in enumerate(words):
        if word in _CLAUSE_END or all(ch in _CLAUSE_END for ch in word):
            negated_at, intensity = None, 1.0
            if word[0] in "。.！!？?\n":
                total += sentence
                sentence, scale = 0.0, 1.0
            continue
        if word in CONTRASTS:
            sentence *= CONTRAST_BEFORE
            scale = CONTRAST_AFTER
            negated_at, intensity = None, 1.0
            continue
        if word in NEGATORS:
            negated_at = index
            continue
        if word in INTENSIFIERS and word not in _WEIGHTS:
            # "不太满意" is milder than "不满意": an intensifier after a negator softens it.
            factor = INTENSIFIERS[word]
            intensity *= 0.6 if negated_at is not None and factor > 1 else factor
            continue
        weight = _WEIGHTS.get(word)
        if weight is None:
            continue
        value = weight * intensity
        if negated_at is not None and index - negated_at <= _NEGATION_REACH:
            value *= NEGATION
        sentence += value * scale
        negated_at, intensity = None, 1.0
    total += sentence
    return total / math.sqrt(total * total + ALPHA)


def sentiment_of(text: str | None) -> float:
    """One text's sentiment in [-1, 1]; 0 for empty or missing text and for text without any
    sentiment word."""
    if not text or not text.strip():
        return 0.0
    words = [part for token in tokens(text) for part in _split(token)]
    return _score(words)


def sentiment(texts: Sequence[str | None]) -> npt.NDArray[np.float64]:
    """Sentiment in [-1, 1] per text (0 for empty or missing text).

    Reviews repeat themselves ("好评", "非常满意！"), so each distinct text is scored once.
    """
    scores: dict[str | None, float] = {}
    out = np.empty(len(texts), dtype=np.float64)
    for index, text in enumerate(texts):
        score = scores.get(text)
        if score is None:
            score = scores[text] = sentiment_of(text)
        out[index] = score
    return out
