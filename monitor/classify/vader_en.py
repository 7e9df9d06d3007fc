"""English sentiment: VADER (vaderSentiment) plus brand-complaint cues.

VADER knows general sentiment words but not how customers complain to a company: "still
waiting", "on hold for an hour", "flight cancelled", "lost my bag", "never again" carry no
negative word it knows, and "please help" even scores positive. Each cue below that occurs
adds its valence (once) to VADER's own sum before the sum is squashed into a compound.

Emoji count as in every other language (``emoji.emoji_valences``): VADER scores an emoji by
the words of its name, which gives 😡 👎 🤬 💩 nothing and 🔥 💔 the wrong sign, so the emoji
the project scores are taken out of what VADER reads and their valences added instead.
"""

from __future__ import annotations

import math
import re
from typing import ClassVar

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.classify.base import SentimentBackend, SentimentResult, from_compound
from monitor.classify.cue_index import CueIndex
from monitor.classify.emoji import emoji_valences, without_emoji
from monitor.classify.lexicon import ALPHA

# (pattern, valence). Patterns are matched case-insensitively on the raw text.
COMPLAINT_CUES: tuple[tuple[str, float], ...] = (
    # waiting, silence, being ignored
    (
        r"\bstill (?:waiting|no\b|not\b|nothing|haven'?t|hasn'?t|have not|has not|on hold|stuck)",
        -2.0,
    ),
    (r"\b(?:been|was|were|am|are|keep|kept) (?:\w+ )?waiting\b", -1.5),
    (
        r"\bwait(?:ed|ing)? (?:for )?(?:over |almost |nearly |more than )?(?:an? |\d+\+? )(?:hour|hr|day|week|min)",
        -1.8,
    ),
    (r"\bon hold\b|\bhold times?\b|\bhung up\b|\bdisconnected\b", -2.0),
    (r"\bno (?:one|body)\b|\bnobody\b", -1.2),
    (
        r"\bno (?:response|reply|answer|help|call ?back|update|updates|info|information|explanation|communication|assistance|apology|notification|email)\b",
        -2.0,
    ),
    (
        r"\b(?:never|haven'?t|have not|hasn'?t|didn'?t|did not) (?:got|get|gotten|received?|heard)\b",
        -1.8,
    ),
    (
        r"\b(?:can'?t|cannot|couldn'?t|unable to|could not) (?:get|reach|find|book|check|change|use|access|log ?in|sign ?in|rebook|cancel|talk|speak|connect|load|download|print|select|make)\b",
        -1.5,
    ),
    (r"\bignor(?:e|ed|ing)\b", -1.8),
    # service failure
    (r"\bcancel+ed\b|\bcancel+ation", -1.8),
    (r"\bdelay(?:ed|s)?\b|\blate flight\b|\brunning late\b|\blate again\b", -1.6),
    (
        r"\b(?:lost|missing|damaged|broken|delayed) (?:my |our |the |a )?(?:bag|bags|luggage|baggage|suitcase|package|parcel|order|item)",
        -2.2,
    ),
    (r"\bmiss(?:ed|ing) (?:my |our |the )?(?:connection|flight|connecting|delivery)\b", -2.0),
    (r"\bstuck\b|\bstranded\b|\btrapped\b", -1.6),
    (r"\b(?:sitting|sat|waiting) on the (?:plane|runway|tarmac)\b|\btarmac\b", -1.5),
    (r"\boverbook(?:ed|ing)\b|\bbumped\b|\bdiverted\b", -1.5),
    (
        r"\b(?:doesn'?t|does not|didn'?t|did not|won'?t|will not|isn'?t|is not|not) (?:work|working|load|loading|open|respond|responding|arrive|arrived|show|charge|charging)\b",
        -2.0,
    ),
    (
        r"\b(?:is|are|was|still|went|been|keeps? going) down\b|\boutage\b|\bcrash(?:ed|es|ing)\b|\berror\b|\bglitch",
        -1.6,
    ),
    (
        r"\brefund\b|\bmy money back\b|\bcharged (?:me|us|twice)\b|\bovercharg|\bhidden fee|\bfees?\b",
        -1.2,
    ),
    (r"\bcomplain(?:t|ts|ed|ing)?\b|\bunacceptable\b|\bunprofessional\b|\bincompeten", -1.8),
    (r"\brude\b|\bunhelpful\b|\bcondescending\b|\byelled\b|\battitude\b", -1.2),
    (
        r"\bnever again\b|\bnever (?:fly|flying|use|using|buy|buying|book|booking|recommend) (?:with )?\b|\blast time i\b",
        -3.0,
    ),
    (r"\bworst\b|\bterrible\b|\bhorrible\b|\bawful\b|\bpathetic\b|\bjoke\b", -0.8),
    (
        r"\b(?:switching|switch) to\b|\bcancel(?:ling)? my (?:account|subscription|membership)\b",
        -1.5,
    ),
    (r"\bthanks? (?:for )?nothing\b|\bthanks a lot\b(?!\s*(?:for|!|:\)))", -2.5),
    (
        r"\bwhy (?:is|are|do|does|did|would|can'?t|won'?t|isn'?t|aren'?t|was|were|the|my|you|would)\b",
        -1.0,
    ),
    (
        r"\bhow (?:is|are) (?:this|that|it) (?:acceptable|possible|ok|okay)\b|\bwhat (?:is|'s) going on\b",
        -2.0,
    ),
    (
        r"\b(?:hours?|days?|weeks?) (?:late|later|delay|wait|waiting|on hold|in line|now|and still|ago)\b",
        -1.5,
    ),
    (r"\b\d+\+? ?(?:hours?|hrs?)\b", -0.8),
    (r"\b(?:again|seriously|really)\?|\?\?+|!!+\s*$", -0.8),
    (
        r"\bnot (?:happy|impressed|pleased|satisfied|ok|okay|good|great|cool|fun|helpful|fair)\b",
        -1.0,
    ),
    (r"#fail\b|#neveragain\b|#worst|#badservice|#customerservicefail", -2.5),
    (r"\bplease (?:help|fix|respond|reply|call|answer|explain)\b|\bhelp me\b", -1.5),
    (r"\bdisappoint|\bfrustrat|\bannoy|\bupset\b|\bangry\b|\bfurious\b", -0.8),
    (r"\bhang(?:s|ed)? up\b|\bhanging up\b|\bkeeps? (?:telling|saying|hanging)", -1.8),
    (
        r"\b(?:lose|lost|losing|misplaced|forgot) (?:it|them|my|our|his|her|their|the)\b|\b(?:bag|bags|luggage|baggage) (?:is |are |was |were )?(?:lost|missing|gone|delayed|still)",
        -1.8,
    ),
    (r"\b(?:reimburse|compensat|voucher)", -1.2),
    (r"\b(?:wasted?|waste of)\b|\bheld up\b|\bwithout (?:food|water|any|a word|notice)\b", -1.5),
    (r"\bhours? ago\b|\b\d+ ?(?:mins?|minutes)\b|\bwaited\b|\ball (?:day|night)\b", -1.0),
    (r"\b(?:won'?t|will not|wouldn'?t) (?:let|allow|accept|take|give|refund|honou?r)\b", -1.5),
    (r"\bnothing (?:they|you|we|i) can do\b|\bnot my problem\b|\bi'?m done\b|\bfed up\b", -2.0),
    (
        r"\b(?:shouldn'?t|should not) (?:have to|take|be)\b|\bhow (?:hard|difficult) (?:is it|can it be)\b",
        -1.5,
    ),
    (r"\bany (?:updates?|news|word|answers?)\b|\basap\b|\burgent", -1.0),
    (
        r"\b(?:find|finding|try|trying) (?:a )?(?:new|another|different) (?:airline|carrier|company|provider|bank|service)\b",
        -2.0,
    ),
    (r"\b(?:wth|wtf|fml|smh|ugh+|omg)\b|\bseriously\b", -1.0),
    (r"\bexpired?\b|\brerouted\b|\bswitched my\b|\bchanged my (?:flight|seat|booking|order)", -1.0),
    (r"\bexpensive\b|\boverpriced\b|\bcharging\b|\bpay(?:ing)? (?:more|extra|again|twice)\b", -1.0),
    (r"\b(?:do not|don'?t|never) (?:reply|respond|answer|call back|care)\b", -1.8),
    (r"\b(?:told|promised) (?:me|us)\b", -0.8),
)

_CUES = [(re.compile(pattern, re.IGNORECASE), valence) for pattern, valence in COMPLAINT_CUES]
# Only the cues whose key words occur are searched (the same sum, a fraction of the time).
_CUE_INDEX = CueIndex([pattern for pattern, _ in _CUES])

# A text that is one yes/no question asserts nothing, so its positive words are not praise
# ("Does Acme support IPv6?", "Is the free tier enough?"); its negative ones still count
# ("Is the dashboard broken again?").
_YES_NO_QUESTION = re.compile(
    r"^\s*(?:[@#]\S+\s+)*(?:does|do|did|is|are|was|were|can|could|will|would|should|has|have)"
    r"\b[^.!?\n]*\?+\s*$",
    re.IGNORECASE,
)


def cue_valence(text: str) -> float:
    return sum(_CUES[index][1] for index in _CUE_INDEX.matching(text))


def _sum_from_compound(compound: float) -> float:
    """Invert VADER's squashing (compound = s / sqrt(s² + 15)) to add cues in the same units."""
    compound = max(min(compound, 0.9999), -0.9999)
    return compound * math.sqrt(ALPHA) / math.sqrt(1 - compound * compound)


class VaderBackend(SentimentBackend):
    name: ClassVar[str] = "vader"
    version: ClassVar[str] = "3.3.2+cues2"
    languages: ClassVar[frozenset[str]] = frozenset({"en"})

    def __init__(self, *, cues: bool = True) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self.cues = cues

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version if self.cues else '3.3.2'}"

    def compound(self, text: str) -> float:
        if not self.cues:
            return float(self._analyzer.polarity_scores(text)["compound"])
        compound = float(self._analyzer.polarity_scores(without_emoji(text))["compound"])
        cues = cue_valence(text)
        base = _sum_from_compound(compound) + sum(emoji_valences(text))
        if cues <= COMPLAINT_CONTEXT or _YES_NO_QUESTION.match(text):
            # In a complaint, "thanks", "great", "please help" are politeness or sarcasm.
            base = min(base, 0.0)
        total = base + cues
        return total / math.sqrt(total * total + ALPHA)

    def score(self, text: str, language: str) -> SentimentResult:
        if not self.cues:  # plain VADER with its authors' ±0.05 band, for comparison
            return from_compound(self.compound(text), self.label)
        return from_compound(self.compound(text), self.label, NEGATIVE_AT, POSITIVE_AT)


# Cue sum at or below which VADER's positive words stop counting.
COMPLAINT_CONTEXT = -1.5
# Compound thresholds, chosen on the English development sets (airline complaints,
# TweetEval) that bench/sentiment_eval.py reports; no held-out split exists, so those English
# scores are in-sample.
NEGATIVE_AT = -0.1
POSITIVE_AT = 0.3
