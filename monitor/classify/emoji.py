"""Emoji and emoticon polarity, the same in every language.

Valences on the lexicon scale (-4 … +4). Emoji that mostly mean "please"/"thanks" or mock
as often as they cheer (🙏, 😂, 🔥) get small weights on purpose.
"""

from __future__ import annotations

import re

from monitor.normalize import few_chars, replace_chars

# fmt: off
EMOJI_VALENCE: dict[str, float] = {
    # joy, love, approval
    "😀": 2.0, "😃": 2.0, "😄": 2.0, "😁": 2.0, "😆": 1.5, "😊": 2.0, "🙂": 1.0,
    "😇": 1.5, "🥰": 2.5, "😍": 2.5, "😘": 2.0, "😻": 2.0, "🤩": 2.5, "☺": 1.5,
    "😋": 1.5, "😎": 1.2, "🤗": 1.5, "🥳": 2.0, "😌": 1.0, "❤": 2.0, "♥": 2.0,
    "💕": 2.0, "💖": 2.0, "💗": 2.0, "💓": 2.0, "💞": 2.0, "💝": 2.0, "💙": 1.8,
    "💚": 1.8, "💛": 1.8, "💜": 1.8, "🧡": 1.8, "🤍": 1.5, "😙": 1.5, "😚": 1.5,
    "👍": 1.8, "👌": 1.5, "👏": 1.8, "🙌": 1.8, "💪": 1.2, "✌": 1.0, "🤝": 1.2,
    "🎉": 2.0, "🎊": 2.0, "✨": 1.0, "🌹": 1.5, "🌸": 1.0, "💐": 1.5, "🏆": 1.5,
    "⭐": 1.2, "🌟": 1.5, "💯": 1.5, "✅": 1.0, "🥇": 1.5, "🙏": 0.5, "🔥": 0.5,
    "😂": 0.3, "🤣": 0.3, "😅": 0.3,
    # sadness, anger, disgust, disapproval
    "😞": -2.0, "😔": -1.8, "😟": -1.8, "😕": -1.2, "🙁": -1.5, "☹": -1.8,
    "😣": -1.8, "😖": -2.0, "😫": -2.0, "😩": -2.0, "😢": -2.0, "😭": -2.0,
    "😤": -2.0, "😠": -2.5, "😡": -3.0, "🤬": -3.0, "👿": -2.5, "💢": -2.0,
    "😒": -1.8, "🙄": -1.5, "😑": -1.0, "😐": -0.5, "😬": -1.0, "😓": -1.5,
    "😥": -1.5, "😰": -1.8, "😨": -1.8, "😱": -1.5, "😧": -1.5, "😦": -1.2,
    "🤮": -3.0, "🤢": -2.5, "💩": -2.0, "👎": -2.5, "💔": -2.2, "😿": -2.0,
    "🤦": -1.8, "🤥": -2.0, "😈": -1.0, "🖕": -3.0, "❌": -1.0, "🚫": -1.0,
    "😪": -1.0, "🥺": -0.8, "😮‍💨": -1.0, "🤡": -2.0, "🐍": -1.5, "🤧": -0.5,
}

_EMOTICONS: dict[str, float] = {
    ":)": 1.5, ":-)": 1.5, ":D": 2.0, ":-D": 2.0, ";)": 1.0, "(:": 1.5, "<3": 2.0,
    ":(": -1.8, ":-(": -1.8, ":'(": -2.0, "):": -1.8, ":/": -1.0, ":-/": -1.0,
    ">:(": -2.5, "-_-": -1.0, "</3": -2.0,
}
# fmt: on
_EMOTICON = re.compile(
    r"(?<!\S)(" + "|".join(re.escape(e) for e in sorted(_EMOTICONS, key=len, reverse=True)) + r")"
    r"(?!\S)"
)
_VARIATION = few_chars({"\ufe0f": None, "\ufe0e": None})


# Longest first, so a multi-character emoji (😮‍💨) wins over its first character.
_EMOJI = re.compile("|".join(re.escape(e) for e in sorted(EMOJI_VALENCE, key=len, reverse=True)))


def emoji_valences(text: str) -> list[float]:
    """Valence of each polar emoji or emoticon; a run of one emoji counts at most three times."""
    text = replace_chars(text, _VARIATION)
    found: list[float] = []
    run_emoji, run_length, run_end = "", 0, -1
    for match in _EMOJI.finditer(text):  # regex scan in C: most texts have no emoji at all
        emoji = match.group()
        between = text[run_end : match.start()]
        same_run = emoji == run_emoji and (not between or between.isspace())
        run_length = run_length + 1 if same_run else 1
        run_emoji, run_end = emoji, match.end()
        if run_length <= 3:
            found.append(EMOJI_VALENCE[emoji])
    found += [_EMOTICONS[match] for match in _EMOTICON.findall(text)]
    return found


def without_emoji(text: str) -> str:
    """The text with every emoji and emoticon that ``emoji_valences`` scores blanked out, for
    a scorer (VADER) that would otherwise score some of them a second time, by the words of
    their names ("😂" face with tears of *joy*, "🔥" *fire* reads negative)."""
    return _EMOJI.sub(" ", _EMOTICON.sub(" ", replace_chars(text, _VARIATION)))
