"""Korean text to syllables: jamo tables, Sino-Korean numbers and the word/boundary parser."""
from __future__ import annotations

import re


_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
# initial consonant: (manner, place, phonation)
_CHO_INFO = (
    ("stop", "velar", "lax"), ("stop", "velar", "tense"), ("nasal", "alveolar", ""),
    ("stop", "alveolar", "lax"), ("stop", "alveolar", "tense"), ("liquid", "alveolar", ""),
    ("nasal", "labial", ""), ("stop", "labial", "lax"), ("stop", "labial", "tense"),
    ("fric", "alveolar", "lax"), ("fric", "alveolar", "tense"), ("none", "", ""),
    ("affricate", "palatal", "lax"), ("affricate", "palatal", "tense"),
    ("affricate", "palatal", "asp"), ("stop", "velar", "asp"), ("stop", "alveolar", "asp"),
    ("stop", "labial", "asp"), ("h", "glottal", ""),
)
# medial vowel: (glide, nucleus, offglide)   ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ
_JUNG_PARTS = (
    ("", "a", ""), ("", "ae", ""), ("j", "a", ""), ("j", "ae", ""), ("", "eo", ""), ("", "e", ""),
    ("j", "eo", ""), ("j", "e", ""), ("", "o", ""), ("w", "a", ""), ("w", "ae", ""), ("w", "e", ""),
    ("j", "o", ""), ("", "u", ""), ("w", "eo", ""), ("w", "e", ""), ("w", "i", ""), ("j", "u", ""),
    ("", "eu", ""), ("", "eu", "i"), ("", "i", ""),
)
# final consonant -> one of the seven coda sounds
_JONG_SOUND = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m",
               "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t")


_DIGITS = "영일이삼사오육칠팔구"


def _read_number(n: int) -> str:
    """Sino-Korean reading of a non-negative integer (10 -> 십, 1500 -> 천오백, 2019 -> 이천십구)."""
    if n == 0:
        return "영"
    out = ""
    for value, name in ((10**8, "억"), (10**4, "만")):
        q, n = divmod(n, value)
        if q:
            out += _read_number(q) + name
    for value, name in ((1000, "천"), (100, "백"), (10, "십")):
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _DIGITS[q]) + name
    return out + (_DIGITS[n] if n else "")


_BOUNDARY_RANK = {"space": 0, "comma": 1, "stop": 2, "question": 3}


def _parse(text: str) -> list[tuple[list[tuple[int, int, int]], str]]:
    """Words as ``([(cho, jung, jong), ...], boundary)``; boundary in space/comma/stop/question."""
    text = re.sub(r"\d+(?:,\d{3})*", lambda m: _read_number(int(m.group().replace(",", ""))), text)
    words: list[tuple[list[tuple[int, int, int]], str]] = []
    cur: list[tuple[int, int, int]] = []

    def close(boundary: str) -> None:
        nonlocal cur
        if cur:
            words.append((cur, boundary))
            cur = []
        elif words and _BOUNDARY_RANK[boundary] > _BOUNDARY_RANK[words[-1][1]]:
            words[-1] = (words[-1][0], boundary)

    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            cur.append((code // 588, (code % 588) // 28, code % 28))
        elif ch.isascii() and ch.isalpha():
            cur.append((11, 4, 0))  # a Latin letter is read as a neutral 어
        elif ch.isspace():
            close("space")
        elif ch in ",;:":
            close("comma")
        elif ch in ".!…":
            close("stop")
        elif ch == "?":
            close("question")
    close("stop")
    if words and words[-1][1] in ("space", "comma"):
        words[-1] = (words[-1][0], "stop")
    return words
