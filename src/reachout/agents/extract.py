"""Variable extractors: the time, day, yes/no or number a person's text states, read without a model.

A scripted agent needs a few facts from short replies ("can we do 3pm instead?", "yes, see you then").
These readers are deliberately narrow: each returns None rather than guess at text it does not recognise,
so the pathway can ask again instead of acting on a misreading. Every extractor is total: it never raises,
whatever the text.

Times and days that the text moves away from ("from 2pm", "not tomorrow", "instead of Friday", "can't do
3pm") are skipped, so "move it from 2pm to 3pm" gives 3pm and "I can't make 2pm" gives nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeAlias


class ExtractorKind(StrEnum):
    """The kinds of variable a pathway node can extract."""

    TIME = "time"
    DAY = "day"
    YES_NO = "yes_no"
    NUMBER = "number"


@dataclass(frozen=True)
class Time:
    """A time of day on the 24-hour clock; ``str()`` gives the short form people text ("3pm", "noon")."""

    hour: int
    minute: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ValueError(f"not a time of day: {self.hour}:{self.minute:02d}")

    def __str__(self) -> str:
        if self.minute == 0 and self.hour in (0, 12):
            return "midnight" if self.hour == 0 else "noon"  # "12am" and "12pm" confuse people
        hour = self.hour % 12 or 12
        minutes = f":{self.minute:02d}" if self.minute else ""
        return f"{hour}{minutes}{'am' if self.hour < 12 else 'pm'}"


_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS_AHEAD: Final = ("today", "tomorrow", "the day after tomorrow")


@dataclass(frozen=True)
class Day:
    """A day as people name it in a text: some days from today, or a weekday, perhaps "next" week's.

    ``str()`` gives the phrase that reads after a time: "tomorrow", "on Friday", "next Friday".
    """

    days_ahead: int | None = None  # 0 today, 1 tomorrow, 2 the day after tomorrow
    weekday: int | None = None  # Monday is 0, as in datetime.date.weekday()
    next_week: bool = False

    def __post_init__(self) -> None:
        if (self.days_ahead is None) == (self.weekday is None):
            raise ValueError("a day is either some days ahead or a weekday")
        if self.days_ahead is not None and (self.next_week or not 0 <= self.days_ahead < len(_DAYS_AHEAD)):
            raise ValueError(f"days ahead must be 0 to {len(_DAYS_AHEAD) - 1}, without next_week")
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise ValueError("a weekday is 0 (Monday) to 6 (Sunday)")

    def __str__(self) -> str:
        if self.days_ahead is not None:
            return _DAYS_AHEAD[self.days_ahead]
        assert self.weekday is not None
        return f"{'next' if self.next_week else 'on'} {_WEEKDAYS[self.weekday]}"


def normalise(text: str) -> str:
    """Lower-case, typographic apostrophes made plain, and letters held for effect ("yesss") cut to two."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    return re.sub(r"([a-z])\1{2,}", r"\1\1", text)


# A mention preceded by one of these is what the person is moving away from, not what they ask for.
_AWAY_FROM: Final = re.compile(
    r"(?:\bfrom|\bnot|\bthan|\binstead\s+of|\b(?:can't|cant|cannot|can\s+not|won't)\s+(?:do|make)(?:\s+it)?)"
    r"\s+(?:(?:at|on|for)\s+)?(?:the\s+)?$"
)


def _wanted(text: str, start: int) -> bool:
    return _AWAY_FROM.search(text, 0, start) is None


# --- times -----------------------------------------------------------------------------------------------

# Words that may follow a bare "at 3" and still leave it a time ("at 3 instead?"), unlike "at 3 places".
_AFTER_BARE_HOUR: Final = (
    "instead|then|please|pls|today|tonight|tomorrow|tmrw|on|next|this|if|or|and|works|would|ok|okay|is|"
    "maybe|thanks|thank|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
)
_TIME: Final = re.compile(
    rf"""
    (?<![\w:.'])
    (?:
        (?P<h>\d{{1,2}})(?:[:.](?P<m>\d{{2}}))?\s*(?:o'?clock\s*)?
        (?:
            (?P<meridiem>[ap])(?:\.m\.?|m)(?!\w)
          | (?:in\s+the|this)\s+(?P<part>morning|afternoon|evening)(?!\w)
          | (?P<night>tonight|at\s+night)(?!\w)
        )
      | (?P<ch>\d{{1,2}}):(?P<cm>\d{{2}})(?![\w:]|\.\d)
      | (?P<oh>\d{{1,2}})\s*o'?clock(?!\w)
      | at\s+(?P<ah>\d{{1,2}})(?=\s*(?:[,!?;)]|\.(?!\d)|$)|\s+(?:{_AFTER_BARE_HOUR})(?!\w))
      | (?:12\s*)?(?P<noon>noon|midday|mid-day)(?!\w)
      | (?P<midnight>midnight)(?!\w)
    )
    """,
    re.VERBOSE | re.MULTILINE,
)


def _daytime_hour(hour: int) -> int | None:
    """An hour said without am or pm, read as the daytime hour people mean about appointments (7am to 6pm)."""
    if not 1 <= hour <= 12:
        return None
    return hour if 7 <= hour <= 12 else hour + 12


def _twelve_hour(hour: int, pm: bool) -> int | None:
    if not 1 <= hour <= 12:
        return None
    return (hour % 12) + (12 if pm else 0)


def _time_of(match: re.Match[str]) -> Time | None:
    """The time a match names, or None when its numbers are not a time ("13pm", "9:75")."""
    groups = match.groupdict()
    minute = 0
    hour: int | None
    if groups["noon"]:
        hour = 12
    elif groups["midnight"]:
        hour = 0
    elif groups["h"]:
        pm = groups["meridiem"] == "p" or bool(groups["night"]) or groups["part"] in ("afternoon", "evening")
        hour, minute = _twelve_hour(int(groups["h"]), pm), int(groups["m"] or 0)
    elif groups["ch"]:
        hour, minute = int(groups["ch"]), int(groups["cm"])
        # "15:00" and "09:30" are the 24-hour clock; "3:30" leaves am or pm unsaid.
        if 1 <= hour <= 12 and not groups["ch"].startswith("0"):
            hour = _daytime_hour(hour)
    else:
        hour = _daytime_hour(int(groups["oh"] or groups["ah"]))
    if hour is None or not 0 <= hour <= 23 or not 0 <= minute <= 59:
        return None
    return Time(hour, minute)


def extract_time(text: str) -> Time | None:
    """The first time of day the text asks for ("3pm", "10.30am", "15:00", "noon"); a bare "3" is not one.

    An hour without am or pm ("3:30", "at 8", "4 o'clock") is read as a daytime hour, 7am to 6pm.
    """
    text = normalise(text)
    for match in _TIME.finditer(text):
        time = _time_of(match)
        if time is not None and _wanted(text, match.start()):
            return time
    return None


# --- days ------------------------------------------------------------------------------------------------

_WEEKDAY_NAMES: Final[Mapping[str, int]] = MappingProxyType(
    {
        **dict.fromkeys(("monday", "mon"), 0),
        **dict.fromkeys(("tuesday", "tues", "tue"), 1),
        **dict.fromkeys(("wednesday", "weds", "wed"), 2),
        **dict.fromkeys(("thursday", "thurs", "thur", "thu"), 3),
        **dict.fromkeys(("friday", "fri"), 4),
        # "sat" and "sun" are left out: "I sat", "the sun".
        "saturday": 5,
        "sunday": 6,
    }
)
_RELATIVE_DAYS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **dict.fromkeys(("today", "tonight", "this morning", "this afternoon", "this evening"), 0),
        **dict.fromkeys(("tomorrow", "tomorow", "tmrw", "tmr", "2morrow", "2moro"), 1),
        **dict.fromkeys(("the day after tomorrow", "day after tomorrow"), 2),
    }
)


def _alternation(words: Iterable[str]) -> str:
    # Longest first, so that a phrase wins over any shorter phrase it starts with.
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


_DAY: Final = re.compile(
    rf"(?<![\w'])(?:(?P<relative>{_alternation(_RELATIVE_DAYS)})"
    rf"|(?:(?P<modifier>next|this\s+coming|this|coming|on)\s+)?(?P<weekday>{_alternation(_WEEKDAY_NAMES)}))"
    r"(?![\w'])"
)


def extract_day(text: str) -> Day | None:
    """The first day the text asks for: "today", "tomorrow", "Friday", "next Tuesday", "on monday"."""
    text = normalise(text)
    for match in _DAY.finditer(text):
        if not _wanted(text, match.start()):
            continue
        if match["relative"]:
            return Day(days_ahead=_RELATIVE_DAYS[re.sub(r"\s+", " ", match["relative"])])
        return Day(weekday=_WEEKDAY_NAMES[match["weekday"]], next_week=match["modifier"] == "next")
    return None


# --- yes or no -------------------------------------------------------------------------------------------


class _Answer(StrEnum):
    YES = "yes"
    NO = "no"
    NEITHER = "neither"  # phrases that contain a yes or no word but answer nothing ("not sure")


_ANSWER_PHRASES: Final[Mapping[_Answer, tuple[str, ...]]] = MappingProxyType(
    {
        _Answer.YES: (
            "yes", "yess", "yeah", "yea", "yeh", "yep", "yup", "ya", "yah", "y", "sure", "ok", "okay", "okk",
            "okey", "k", "kk", "alright", "all right", "fine", "great", "perfect", "correct", "confirm",
            "confirmed", "absolutely", "definitely", "certainly", "of course", "sounds good", "sounds great",
            "sounds fine", "sounds perfect", "see you then", "see you there", "see you soon", "see ya",
            "that works", "works for me", "that's fine", "i'll be there", "i will be there", "will do",
            "no problem", "no problemo", "no prob", "no worries", "not a problem", "why not",
            "i don't mind", "\N{THUMBS UP SIGN}",
        ),
        _Answer.NO: (
            "no", "noo", "nope", "nah", "n", "not really", "no thanks", "no thank you", "not ok",
            "not okay", "not good", "not great", "not fine", "of course not", "negative",
            "can't make it", "cannot make it", "can not make it", "won't make it", "can't come",
            "won't be able", "not able", "unable", "doesn't work", "does not work", "don't think so",
            "\N{THUMBS DOWN SIGN}",
        ),
        _Answer.NEITHER: ("not sure", "no idea", "dunno", "don't know", "not yet", "maybe", "no one"),
    }
)  # fmt: skip
_ANSWERS: Final[Mapping[str, _Answer]] = MappingProxyType(
    {
        variant: answer
        for answer, phrases in _ANSWER_PHRASES.items()
        for phrase in phrases
        for variant in (phrase, phrase.replace("'", ""))  # people often drop the apostrophe
    }
)
_ANSWER: Final = re.compile(rf"(?<![\w'])(?:{_alternation(_ANSWERS)})(?![\w'])")


def extract_yes_no(text: str) -> bool | None:
    """True for a yes ("yep", "sounds good", "no problem"), False for a no ("nope", "not really").

    None when the text says neither, or both ("yes, but I can't make it").
    """
    said = {_ANSWERS[re.sub(r"\s+", " ", m[0])] for m in _ANSWER.finditer(normalise(text))}
    said.discard(_Answer.NEITHER)
    if said == {_Answer.YES}:
        return True
    if said == {_Answer.NO}:
        return False
    return None


# --- numbers ---------------------------------------------------------------------------------------------

_UNITS: Final = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS: Final = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_NUMBER_WORDS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **{word: value for value, word in enumerate(_UNITS)},
        **{word: 20 + 10 * i for i, word in enumerate(_TENS)},
        "hundred": 100,
        "thousand": 1000,
    }
)
_DIGITS: Final = re.compile(
    r"(?<![\w.,:])(?P<sign>-)?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?(?![\w:]|[.,]\d)"
)
# A run of number words, joined by spaces, hyphens or "and" ("twenty-five", "two hundred and five").
_NUMBER_WORD: Final = rf"(?:{_alternation(_NUMBER_WORDS)})"
_WORD_RUN: Final = re.compile(rf"(?<![\w']){_NUMBER_WORD}(?:(?:\s+and\s+|[\s-]+){_NUMBER_WORD})*(?![\w'])")


def _words_value(words: list[str]) -> int:
    """The value of the longest start of `words` that reads as one number: "five twenty" is 5."""
    total, current, previous = 0, 0, None  # previous: the last word's value
    for word in words:
        value = _NUMBER_WORDS[word]
        if value == 1000:
            fits = total == 0 and previous != 1000
        elif value == 100:
            fits = previous is None or (previous < 100 and current < 100)
        elif value >= 20:
            fits = previous is None or previous >= 100
        else:  # a unit or teen: alone, after "hundred" or "thousand", or 1 to 9 after a ten ("twenty-five")
            fits = previous is None or (value > 0 and (previous >= 100 or (previous >= 20 and value < 10)))
        if not fits:
            break
        if value == 1000:
            total, current = (current or 1) * 1000, 0
        elif value == 100:
            current = (current or 1) * 100
        else:
            current += value
        previous = value
    return total + current


def extract_number(text: str) -> int | float | None:
    """The first number the text states, in digits ("2", "3.5", "1,000") or words ("two", "twenty-five")."""
    text = normalise(text)
    found: list[tuple[int, int | float]] = []
    if (digits := _DIGITS.search(text)) is not None:
        whole = int(digits["whole"].replace(",", ""))
        number: int | float = float(f"{whole}.{digits['fraction']}") if digits["fraction"] else whole
        found.append((digits.start(), -number if digits["sign"] else number))
    if (run := _WORD_RUN.search(text)) is not None:
        found.append((run.start(), _words_value([w for w in re.split(r"[\s-]+", run[0]) if w != "and"])))
    return min(found, key=lambda item: item[0])[1] if found else None


# --- by kind ---------------------------------------------------------------------------------------------

Value: TypeAlias = str | bool | int | float
"""A variable's value as stored with the conversation: JSON, and readable when rendered into a reply."""


def extract(kind: ExtractorKind, text: str) -> Value | None:
    """Run the extractor of `kind`; times and days come back as their short phrase ("3pm", "on Friday")."""
    match kind:
        case ExtractorKind.TIME:
            time = extract_time(text)
            return None if time is None else str(time)
        case ExtractorKind.DAY:
            day = extract_day(text)
            return None if day is None else str(day)
        case ExtractorKind.YES_NO:
            return extract_yes_no(text)
        case ExtractorKind.NUMBER:
            return extract_number(text)
