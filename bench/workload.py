"""Generated workloads shared by the benchmarks: multilingual posts and feeds.

Shapes follow the recorded fixtures (a Google Alerts entry: a title and an HTML snippet
with the keyword in ``<b>``; a blog/news RSS item with guid, link, pubDate and a
description of a few sentences). The sentences are the project's own, written for the
benchmark in English, Hindi, Bengali and Persian — never taken from the evaluation sets.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

BRAND = "Acme Cloud"
# Watchlist queries the workloads are built to hit (the brand, a product, a competitor).
QUERIES = {
    "brand": '"acme cloud" OR acmecloud OR "एक्मे क्लाउड" OR "অ্যাকমি ক্লাউড" OR "اکمی کلاود"',
    "product": '"acme storage" OR "acme backup"',
    "competitor": "globex OR initech",
}
MENTIONS = {
    "en": ["Acme Cloud", "Acme Storage", "Globex", "acmecloud"],
    "hi": ["एक्मे क्लाउड", "Acme Cloud", "Globex"],
    "bn": ["অ্যাকমি ক্লাউড", "Acme Cloud", "Initech"],
    "fa": ["اکمی کلاود", "Acme Cloud", "Globex"],
}
SENTENCES = {
    "en": [
        "I have been waiting three days for {b} support to answer my ticket.",
        "{b} charged me twice this month and nobody replies about the refund.",
        "Honestly the new dashboard from {b} is great, setup took five minutes.",
        "Is anyone else seeing the {b} outage in the Frankfurt region?",
        "We moved our backups to {b} last quarter and the bill went down.",
        "The release notes for {b} mention a faster upload path.",
        "Never again, {b} lost a whole day of our data and support is useless.",
        "Thanks to the {b} team for fixing our login issue so quickly!",
        "A long read about how small teams pick a storage provider like {b}.",
        "Our webinar next week compares {b} with two other vendors.",
    ],
    "hi": [
        "{b} की सेवा बहुत खराब है, तीन दिन से कोई जवाब नहीं मिला।",
        "मैंने {b} पर रिफंड माँगा था लेकिन अभी तक पैसा वापस नहीं आया।",
        "{b} का नया डैशबोर्ड बहुत अच्छा है, धन्यवाद।",
        "क्या किसी और को भी {b} में लॉगिन की समस्या आ रही है?",
        "हमारी टीम ने पिछले महीने {b} पर बैकअप शुरू किया।",
        "{b} के बारे में आज एक लेख पढ़ा।",
    ],
    "bn": [
        "{b} এর সেবা খুবই খারাপ, কেউ উত্তর দেয়নি।",
        "{b} আমার টাকা দুবার কেটেছে, ফেরত দেয়নি।",
        "{b} এর নতুন ড্যাশবোর্ড সত্যিই দারুণ, ধন্যবাদ।",
        "আর কারও কি {b} লগইনে সমস্যা হচ্ছে?",
        "আমরা গত মাসে {b} ব্যবহার শুরু করেছি।",
    ],
    "fa": [
        "پشتیبانی {b} خیلی بد است و سه روز است جوابی ندادند.",
        "{b} دو بار از من پول گرفت و هنوز بازپرداخت نکرده.",
        "داشبورد جدید {b} عالی است، ممنون.",
        "کسی دیگر هم در ورود به {b} مشکل دارد؟",
        "ما ماه گذشته پشتیبان‌گیری را به {b} منتقل کردیم.",
    ],
}
FILLER = {
    "en": [
        "The weather in the city was mild for most of the week.",
        "A new bakery opened near the station and the queue was long.",
        "Our team shipped three small fixes and a documentation update.",
        "The football match went to extra time before a late winner.",
        "Prices for fresh vegetables rose slightly at the market.",
    ],
    "hi": [
        "इस हफ्ते शहर में मौसम सुहावना रहा।",
        "स्टेशन के पास एक नई बेकरी खुली है।",
        "कल का मैच बहुत रोमांचक था।",
    ],
    "bn": [
        "এই সপ্তাহে শহরের আবহাওয়া ভালো ছিল।",
        "স্টেশনের কাছে একটি নতুন বেকারি খুলেছে।",
        "গতকালের খেলাটি খুব উত্তেজনাপূর্ণ ছিল।",
    ],
    "fa": [
        "هوای شهر این هفته ملایم بود.",
        "یک نانوایی تازه نزدیک ایستگاه باز شد.",
        "بازی دیروز خیلی هیجان‌انگیز بود.",
    ],
}
LANGUAGES = ("en", "en", "en", "hi", "bn", "fa")  # most mentions are English
# Words for the sentence that makes every post its own: without it, posts built from the
# same few sentences would rightly be folded into one mention by near-duplicate dedup.
_TOPIC_TEXT = {
    "en": (
        "invoice billing outage login dashboard export archive restore latency region migration "
        "api webhook quota folder bucket upload download refund upgrade plan seat admin token "
        "password reset email phone chat ticket escalation monday tuesday friday weekend morning "
        "evening customer manager developer startup agency school hospital bakery library "
        "project report meeting deadline release version mobile desktop browser server network "
        "camera photo video music podcast newsletter invoice contract partner vendor pricing"
    ),
    "hi": (
        "बिल भुगतान खाता पासवर्ड सर्वर फ़ाइल डेटा ग्राहक टिकट शिकायत सोमवार शुक्रवार सुबह शाम "
        "कंपनी टीम परियोजना रिपोर्ट बैठक मोबाइल वेबसाइट ऐप वीडियो फोटो संदेश ईमेल नंबर दफ्तर "
        "स्कूल अस्पताल दुकान बाज़ार शहर गाँव परिवार दोस्त किताब खबर"
    ),
    "bn": (
        "বিল টাকা অ্যাকাউন্ট পাসওয়ার্ড সার্ভার ফাইল ডেটা গ্রাহক টিকিট অভিযোগ সোমবার শুক্রবার "
        "সকাল সন্ধ্যা কোম্পানি দল প্রকল্প প্রতিবেদন সভা মোবাইল ওয়েবসাইট অ্যাপ ভিডিও ছবি বার্তা "
        "ইমেইল নম্বর অফিস স্কুল হাসপাতাল দোকান বাজার শহর গ্রাম পরিবার বন্ধু বই খবর"
    ),
    "fa": (
        "صورتحساب پرداخت حساب رمز سرور فایل داده مشتری تیکت شکایت دوشنبه جمعه صبح عصر شرکت "
        "تیم پروژه گزارش جلسه موبایل وبسایت برنامه ویدیو عکس پیام ایمیل شماره دفتر مدرسه "
        "بیمارستان مغازه بازار شهر روستا خانواده دوست کتاب خبر"
    ),
}
TOPIC_WORDS = {language: text.split() for language, text in _TOPIC_TEXT.items()}


def post(rng: random.Random, *, mentions_brand: bool, unique: str = "") -> tuple[str, str]:
    """(language, text) of one social post or article snippet."""
    language = rng.choice(LANGUAGES)
    sentences = rng.sample(FILLER[language], k=min(2, len(FILLER[language])))
    if mentions_brand:
        brand = rng.choice(MENTIONS[language])
        sentences.insert(rng.randrange(3), rng.choice(SENTENCES[language]).format(b=brand))
    sentences.append(" ".join(rng.choices(TOPIC_WORDS[language], k=12)))
    text = " ".join(sentences)
    return language, f"{text} {unique}".strip()


def feed(
    index: int,
    entries: int,
    *,
    match_share: float,
    rng: random.Random,
    now: datetime | None = None,
) -> bytes:
    """One RSS 2.0 document shaped like a news/blog feed (Google Alerts-like snippets)."""
    now = now or datetime.now(UTC)
    items = []
    for j in range(entries):
        language, text = post(rng, mentions_brand=rng.random() < match_share, unique=f"(#{j})")
        # Headlines are distinct, as on real sites: a shared 6-word headline is a dedup key.
        title = " ".join(rng.choices(TOPIC_WORDS[language], k=8)).capitalize()
        snippet = escape(f"<p>{escape(text)}</p>")  # escaped HTML, as Google Alerts sends it
        published = format_datetime(now - timedelta(minutes=j * 7 + index % 60))
        items.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://news{index}.test/{language}/article-{j}?utm_source=rss</link>"
            f"<guid isPermaLink='false'>news{index}-{j}</guid><pubDate>{published}</pubDate>"
            f"<description>{snippet}</description></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>News site {index}</title><link>https://news{index}.test/</link>"
        f"<description>Stories from site {index}</description><language>en</language>"
        f"{''.join(items)}</channel></rss>"
    ).encode()
