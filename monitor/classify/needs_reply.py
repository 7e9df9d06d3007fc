"""Does this mention ask something of the brand? Separate from sentiment: a polite
question needs an answer, a grumpy review may not, and a complaint addressed to the brand
does.

A mention needs a reply when it
- asks directly (please / help / fix / refund / contact me …, in its language), or
- reports a service failure (not working, can't log in, still waiting, no response …), or
- asks a question (``?``/``؟`` or a question word) of someone — the brand is tagged, it
  speaks to "you", or it asks about the writer's own case ("how do I", "my order") — or
  asks what the product can do ("does … support IPv6?"), which only the brand can answer, or
- is negative and about the writer's own experience or addressed to the brand.
Phrases are matched on whole words of the folded text, so they work in every script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from monitor.classify.text import fold
from monitor.normalize import token_texts


@dataclass(frozen=True, slots=True)
class ReplyCues:
    asks: tuple[str, ...]  # direct requests
    failures: tuple[str, ...]  # service failures
    question_words: tuple[str, ...]
    second_person: tuple[str, ...]  # "you", "your": the text speaks to someone
    first_person: tuple[str, ...]  # "my", "I": about the writer's own case
    # What a product does or offers ("support", "work with"): in a question, it is asked of
    # the brand even when the brand is named rather than tagged.
    capability: tuple[str, ...] = ()
    # Where set, such a question must open with one of these ("does", "can"): "Which clouds
    # support IPv6? A roundup" is a headline, "Does Acme support IPv6?" a question to Acme.
    capability_openers: tuple[str, ...] = ()


CUES: dict[str, ReplyCues] = {
    "en": ReplyCues(
        asks=(
            "please",
            "please help",
            "please fix",
            "help!",
            "pls",
            "plz",
            "help me",
            "refund",
            "contact me",
            "dm me",
            "call me",
            "email me",
            "get back to me",
            "any update",
            "need help",
            "cancel my",
            "money back",
            "assist",
            "sort this out",
            "look into",
            "how do i",
            "how can i",
            "how to",
            "where is my",
            "when will",
            "anyone know",
            "does anyone know",
            "can someone",
            "could someone",
            "can somebody",
            "someone please",
            "look at it",
            "look at this",
            "take a look",
        ),
        failures=(
            "not working",
            "doesn't work",
            "does not work",
            "isn't working",
            "won't load",
            "can't log in",
            "cannot log in",
            "can't login",
            "can't access",
            "cannot access",
            "is down",
            "outage",
            "still waiting",
            "no response",
            "no reply",
            "no one answers",
            "never arrived",
            "never received",
            "charged twice",
            "charged me twice",
            "charged us twice",
            "billed twice",
            "double charged",
            "double charge",
            "double billed",
            "lost my",
            "cancelled my",
            "canceled my",
            "on hold",
            "hung up",
            "broken",
            "error",
            "crashed",
            "crashing",
            "keeps crashing",
            "crashes when",
            "crashes every",
            "crashes on",
            "keeps freezing",
            "freezes when",
            "keeps hanging",
            "stuck",
            "stranded",
            "delayed",
            "missing",
        ),
        question_words=(),  # English questions carry a "?"; "how do I …" is an ask
        second_person=("you", "your", "you're", "u", "ur", "yours"),
        first_person=("i", "my", "me", "we", "our", "i'm", "i've", "us", "mine"),
        capability=(
            "support",
            "supports",
            "work with",
            "works with",
            "integrate with",
            "integrates with",
            "compatible with",
            "offer",
            "offers",
            "is there a way",
            "is it possible",
            "available in",
        ),
        capability_openers=("does", "do", "did", "can", "could", "will", "would", "is", "are"),
    ),
    "hi": ReplyCues(
        asks=(
            "कृपया",
            "कृप्या",
            "प्लीज",
            "मदद",
            "सहायता",
            "बताएं",
            "बताइए",
            "बताओ",
            "बताये",
            "बताए",
            "कोई बताए",
            "जवाब दें",
            "संपर्क करें",
            "ठीक करें",
            "ठीक करो",
            "रिफंड",
            "पैसे वापस",
            "हेल्प",
            "समाधान",
            "जल्द से जल्द",
        ),
        failures=(
            "काम नहीं कर",
            "काम नहीं करता",
            "काम नहीं करती",
            "नहीं चल रहा",
            "नहीं चल रही",
            "बंद हो गया",
            "बंद हो गई",
            "नहीं मिला",
            "नहीं मिली",
            "अभी तक नहीं",
            "कोई जवाब नहीं",
            "शिकायत",
            "खराब हो गया",
            "खराब हो गई",
            "टूटा हुआ",
            "डिलीवरी नहीं",
            "लॉगिन नहीं",
            "पैसे कट गए",
            "पैसा कट गया",
            "दो बार पैसे कट",
            "पैसे दो बार कट",
            "डबल चार्ज",
            "क्रैश हो",
            "क्रैश कर",
            "क्रेश हो",
            "हैंग हो",
            "अटक जाता",
            "अटक जाती",
            "जवाब नहीं दिया",
            "जवाब नहीं दे रहे",
            "जवाब नहीं देते",
        ),
        question_words=("क्या", "कैसे", "कब", "क्यों", "कहाँ", "कहां", "कौन", "किसे", "कितना", "कितने"),
        second_person=("आप", "आपका", "आपकी", "आपके", "तुम", "तुम्हारा", "आपने"),
        first_person=("मैं", "मेरा", "मेरी", "मेरे", "मुझे", "हम", "हमारा", "हमें", "मैंने"),
        capability=(
            "सपोर्ट करता",
            "सपोर्ट करती",
            "सपोर्ट करते",
            "सुविधा है",
            "सुविधा मिलती",
            "उपलब्ध है",
        ),
    ),
    "bn": ReplyCues(
        asks=(
            "দয়া করে",
            "অনুগ্রহ করে",
            "প্লিজ",
            "সাহায্য",
            "সাহায্য করুন",
            "জানাবেন",
            "বলবেন",
            "জানান",
            "ঠিক করুন",
            "যোগাযোগ করুন",
            "টাকা ফেরত",
            "রিফান্ড",
            "সমাধান",
            "হেল্প",
        ),
        failures=(
            "কাজ করছে না",
            "কাজ করে না",
            "চলছে না",
            "পাইনি",
            "পাচ্ছি না",
            "এখনো পাইনি",
            "কোনো উত্তর নেই",
            "কোন উত্তর নেই",
            "সাড়া নেই",
            "অভিযোগ",
            "নষ্ট হয়ে গেছে",
            "ডেলিভারি পাইনি",
            "টাকা কেটে নিয়েছে",
            "লগইন করতে পারছি না",
            "বন্ধ হয়ে গেছে",
            "ক্র্যাশ করছে",
            "ক্র্যাশ করে",
            "ক্র্যাশ হয়",
            "ক্র্যাশ হচ্ছে",
            "ক্র্যাশ হয়ে",
            "হ্যাং হয়ে",
            "হ্যাং করে",
            "আটকে যায়",
            "দুইবার টাকা কেটেছে",
            "দুবার টাকা কেটেছে",
            "উত্তর দেয়নি",
            "উত্তর দেয় না",
            "উত্তর দিচ্ছে না",
            "উত্তর দিল না",
            "উত্তর দিলো না",
            "সাড়া দেয়নি",
            "সাড়া দিচ্ছে না",
            "জবাব দেয়নি",
            "জবাব দিচ্ছে না",
        ),
        question_words=(
            "কি",
            "কী",
            "কেন",
            "কবে",
            "কোথায়",
            "কিভাবে",
            "কীভাবে",
            "কে",
            "কখন",
            "কত",
            "কোন",
        ),
        second_person=("আপনি", "আপনার", "আপনারা", "আপনাদের", "তুমি", "তোমার", "তোমরা"),
        first_person=("আমি", "আমার", "আমাকে", "আমরা", "আমাদের"),
        capability=("সাপোর্ট করে", "সাপোর্ট আছে", "সুবিধা আছে", "পাওয়া যায়", "পাওয়া যাবে"),
    ),
    "fa": ReplyCues(
        asks=(
            "لطفا",
            "لطفاً",
            "خواهشا",
            "خواهش میکنم",
            "کمک",
            "راهنمایی",
            "پاسخ بدید",
            "جواب بدید",
            "پیگیری کنید",
            "تماس بگیرید",
            "درست کنید",
            "پولم",
            "بازگشت وجه",
            "رسیدگی",
            "پیگیری",
            "کسی میدونه",
            "کسی میداند",
            "میشه بگید",
        ),
        failures=(
            "کار نمیکنه",
            "کار نمیکند",
            "وصل نمیشه",
            "وصل نمیشود",
            "باز نمیشه",
            "قطع شده",
            "هنوز نرسیده",
            "نرسیده",
            "جواب نمیدید",
            "جوابی ندادید",
            "پاسخی نداده",
            "شکایت",
            "خراب شده",
            "پول کم شده",
            "کسر شده",
            "لغو شد",
            "هنوز منتظرم",
            "کرش میکنه",
            "کرش میکند",
            "کرش کرد",
            "کرش کرده",
            "هنگ میکنه",
            "هنگ میکند",
            "هنگ کرده",
            "دو بار کسر",
            "دوبار کسر",
            "جواب ندادن",
            "جواب ندادند",
            "جواب نداد",
            "جواب نمیدن",
            "جواب نمیدهند",
            "جواب نمیده",
            "جوابی نداد",
            "جوابی ندادن",
            "پاسخ ندادند",
            "پاسخ نداد",
            "پاسخ نمیدهند",
            "پاسخگو نیستند",
            "پاسخگو نیست",
        ),
        question_words=("آیا", "چرا", "کی", "کجا", "چطور", "چگونه", "چه", "چند", "کدام", "کدوم"),
        second_person=("شما", "شمارو", "تون", "تان", "شماها"),
        first_person=("من", "ما", "مال من", "برام", "بنده"),
        capability=(
            "پشتیبانی میکنه",
            "پشتیبانی میکند",
            "ساپورت میکنه",
            "ساپورت میکند",
            "امکانش هست",
            "امکان داره",
            "امکان دارد",
        ),
    ),
}

QUESTION_MARKS = ("?", "؟", "？")
# A sentence and the mark that ends it; a question is one ending in a question mark.
_SENTENCE = re.compile(r"([^.!?؟？।\n]*)([.!?؟？।\n]|$)")
_HANDLE_OR_TAG = re.compile(r"^(?:[@#]\S+\s+)+")


def _words(text: str, language: str) -> str:
    return " " + " ".join(token_texts(fold(text, language))) + " "


@lru_cache(maxsize=4096)
def _phrase(phrase: str, language: str) -> str:
    return _words(phrase, language)


def _has(words: str, phrases: tuple[str, ...], language: str) -> bool:
    pattern = _phrases_pattern(phrases, language)
    return pattern is not None and pattern.search(words) is not None


@lru_cache(maxsize=512)
def _phrases_pattern(phrases: tuple[str, ...], language: str) -> re.Pattern[str] | None:
    """One regex for a cue list: a single scan of the text instead of one `in` per phrase.
    Phrases are space-padded word runs, so this is the same substring test."""
    folded = sorted({_phrase(phrase, language) for phrase in phrases}, key=len, reverse=True)
    folded = [phrase for phrase in folded if phrase.strip()]
    return re.compile("|".join(re.escape(phrase) for phrase in folded)) if folded else None


def _asks_what_it_can_do(text: str, words: str, cues: ReplyCues, language: str) -> bool:
    if not _has(words, cues.capability, language):
        return False
    if not cues.capability_openers:
        return True
    for sentence, mark in _SENTENCE.findall(text):
        if mark not in QUESTION_MARKS:
            continue
        opening = _HANDLE_OR_TAG.sub("", sentence.strip())
        first = _words(opening, language).split()[:1]
        if first and first[0] in cues.capability_openers:
            return True
    return False


def needs_reply(text: str, language: str, *, tagged: bool = False, negative: bool = False) -> bool:
    cues = CUES.get(language)
    words = _words(text, language or "en")
    question = any(mark in text for mark in QUESTION_MARKS)
    if cues is None:  # other languages: only an explicit question to the tagged brand
        return tagged and question
    if _has(words, cues.asks, language) or _has(words, cues.failures, language):
        return True
    question = question or _has(words, cues.question_words, language)
    addressed = tagged or _has(words, cues.second_person, language)
    personal = _has(words, cues.first_person, language)
    if question and (addressed or personal or _asks_what_it_can_do(text, words, cues, language)):
        return True
    return negative and (addressed or personal)
