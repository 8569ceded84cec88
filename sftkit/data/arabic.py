"""Arabic text normalisation (``data.arabic_normalize``).

Strips diacritics (harakat, tanwin, shadda, sukun, superscript alef, Quranic marks) and tatweel, and
unifies letter variants: alef forms أ إ آ ٱ -> ا, alef maqsura ى -> ي, taa marbuta ة -> ه.
Text in other scripts is left as it is.
"""

from __future__ import annotations

import re

#: harakat and tanwin (U+064B-U+065F), superscript alef (U+0670), Quranic annotation marks
DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed]")
TATWEEL = "\u0640"
_LETTERS = str.maketrans(
    {
        "\u0623": "\u0627",  # أ -> ا
        "\u0625": "\u0627",  # إ -> ا
        "\u0622": "\u0627",  # آ -> ا
        "\u0671": "\u0627",  # ٱ -> ا
        "\u0649": "\u064a",  # ى -> ي
        "\u0629": "\u0647",  # ة -> ه
        TATWEEL: None,
    }
)


def normalize_arabic(text: str) -> str:
    """Normalised Arabic: no diacritics or tatweel, one alef, yaa for alef maqsura, haa for taa marbuta."""
    return DIACRITICS.sub("", text).translate(_LETTERS)
