import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.agents.extract import (
    Day,
    ExtractorKind,
    Time,
    extract,
    extract_day,
    extract_number,
    extract_time,
    extract_yes_no,
    normalise,
)

# --- times -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3pm", Time(15)),
        ("3 pm", Time(15)),
        ("3PM", Time(15)),
        ("3 p.m.", Time(15)),
        ("3:30pm", Time(15, 30)),
        ("10:30am", Time(10, 30)),
        ("10.30am", Time(10, 30)),
        ("10.30 a.m", Time(10, 30)),
        ("15:00", Time(15)),
        ("09:30", Time(9, 30)),
        ("0:45", Time(0, 45)),
        ("noon", Time(12)),
        ("12 noon", Time(12)),
        ("midday", Time(12)),
        ("mid-day", Time(12)),
        ("midnight", Time(0)),
        ("12am", Time(0)),
        ("12pm", Time(12)),
        ("12:15am", Time(0, 15)),
        ("3 o'clock", Time(15)),
        ("3 o\u2019clock", Time(15)),
        ("3 in the afternoon", Time(15)),
        ("10 in the morning", Time(10)),
        ("7 tonight", Time(19)),
        ("8 this evening", Time(20)),
        ("Can I move it to 3pm instead?", Time(15)),
        ("could we do 10:30am?", Time(10, 30)),
        ("Friday at 3pm", Time(15)),
        ("how about 4pm tomorrow", Time(16)),
        ("at noon please", Time(12)),
        ("at 3", Time(15)),
        ("at 3?", Time(15)),
        ("at 10 instead", Time(10)),
        ("at 4 on Friday", Time(16)),
        ("can we do it at 11.", Time(11)),
    ],
)
def test_times(text: str, expected: Time) -> None:
    assert extract_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3:30", Time(15, 30)),  # without am or pm, an hour is read as daytime: 7am to 6pm
        ("6:45", Time(18, 45)),
        ("7:15", Time(7, 15)),
        ("11:00", Time(11)),
        ("12:30", Time(12, 30)),
        ("1 o'clock", Time(13)),
    ],
)
def test_an_hour_without_am_or_pm_is_read_as_daytime(text: str, expected: Time) -> None:
    assert extract_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "3",
        "2",
        "3.5",
        "10.30",  # a dot needs am or pm to be a time: it may be a price
        "$3.50",
        "I have 3 kids",
        "at 3 places",
        "13pm",
        "0am",
        "9:75",
        "24:00",
        "1:30:00",
        "call 415-555-0100",
        "afternoon",
        "this morning",
        "2 amazing days",
        "what?",
        "hmm",
        "",
        "3 a",
        "the 3 of us",
    ],
)
def test_not_times(text: str) -> None:
    assert extract_time(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I move it from 2pm to 3pm?", Time(15)),
        ("not 2pm, 4pm", Time(16)),
        ("could we do 3pm instead of 2pm", Time(15)),
        ("rather than 2pm, 5pm would be better", Time(17)),
        ("I can't do 2pm but 4:30pm works", Time(16, 30)),
        ("I can\u2019t make 2pm", None),
        ("not at 2pm", None),
        ("3pm or 4pm", Time(15)),
    ],
)
def test_a_time_being_moved_away_from_is_skipped(text: str, expected: Time | None) -> None:
    assert extract_time(text) == expected


@pytest.mark.parametrize(
    ("time", "shown"),
    [
        (Time(15), "3pm"),
        (Time(10, 30), "10:30am"),
        (Time(9, 5), "9:05am"),
        (Time(12), "noon"),
        (Time(0), "midnight"),
        (Time(0, 30), "12:30am"),
        (Time(12, 45), "12:45pm"),
        (Time(23, 59), "11:59pm"),
    ],
)
def test_times_render_as_people_write_them(time: Time, shown: str) -> None:
    assert str(time) == shown


@pytest.mark.parametrize(("hour", "minute"), [(24, 0), (-1, 0), (12, 60), (12, -1)])
def test_a_time_out_of_range_is_refused(hour: int, minute: int) -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        Time(hour, minute)


times = st.builds(Time, hour=st.integers(0, 23), minute=st.integers(0, 59))


@given(times)
def test_a_rendered_time_reads_back_as_itself(time: Time) -> None:
    assert extract_time(str(time)) == time
    assert extract_time(str(time).upper()) == time


@given(times, st.sampled_from(["Can we do {}?", "{} works", "how about {} on Friday", "{}\nthanks"]))
def test_a_rendered_time_reads_back_inside_a_sentence(time: Time, sentence: str) -> None:
    assert extract_time(sentence.format(time)) == time


# --- days ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", Day(days_ahead=0)),
        ("Tonight", Day(days_ahead=0)),
        ("tomorrow", Day(days_ahead=1)),
        ("tmrw at 3pm", Day(days_ahead=1)),
        ("the day after tomorrow", Day(days_ahead=2)),
        ("day after  tomorrow?", Day(days_ahead=2)),
        ("Friday", Day(weekday=4)),
        ("fri at 3", Day(weekday=4)),
        ("on monday", Day(weekday=0)),
        ("this Thursday", Day(weekday=3)),
        ("this coming wed", Day(weekday=2)),
        ("next Tuesday", Day(weekday=1, next_week=True)),
        ("NEXT TUES", Day(weekday=1, next_week=True)),
        ("Saturday morning", Day(weekday=5)),
        ("sunday", Day(weekday=6)),
        ("Friday at 3pm", Day(weekday=4)),
        ("can't do tomorrow, how about Friday?", Day(weekday=4)),
        ("from Thursday to next Monday", Day(weekday=0, next_week=True)),
    ],
)
def test_days(text: str, expected: Day) -> None:
    assert extract_day(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "3pm", "I sat in the sun", "c'mon", "monthly", "wedding", "next week", "I can't make it tomorrow"],
)
def test_not_days(text: str) -> None:
    assert extract_day(text) is None


@pytest.mark.parametrize(
    ("day", "shown"),
    [
        (Day(days_ahead=0), "today"),
        (Day(days_ahead=1), "tomorrow"),
        (Day(days_ahead=2), "the day after tomorrow"),
        (Day(weekday=4), "on Friday"),
        (Day(weekday=1, next_week=True), "next Tuesday"),
    ],
)
def test_days_render_as_the_phrase_after_a_time(day: Day, shown: str) -> None:
    assert str(day) == shown


ALL_DAYS = [Day(days_ahead=n) for n in range(3)] + [
    Day(weekday=w, next_week=n) for w in range(7) for n in (False, True)
]


@pytest.mark.parametrize("day", ALL_DAYS, ids=str)
def test_a_rendered_day_reads_back_as_itself(day: Day) -> None:
    assert extract_day(str(day)) == day
    assert extract_day(f"could we do 3pm {day} instead?") == day


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"days_ahead": 1, "weekday": 2},
        {"days_ahead": 3},
        {"days_ahead": 1, "next_week": True},
        {"weekday": 7},
    ],
)
def test_an_impossible_day_is_refused(fields: dict[str, int | bool]) -> None:
    with pytest.raises(ValueError):
        Day(**fields)  # type: ignore[arg-type]


# --- yes or no -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "Yes!",
        "YES",
        "yesss",
        "yep",
        "yeah",
        "yup",
        "y",
        "sure",
        "ok",
        "OK",
        "okay",
        "k",
        "sounds good",
        "Sounds  good!",
        "see you then",
        "yes, see you then",
        "that works",
        "confirmed",
        "no problem",
        "No problem, see you then",
        "no worries",
        "I don\u2019t mind",
        "of course",
        "\N{THUMBS UP SIGN}",
        "Perfect, thanks",
    ],
)
def test_yes(text: str) -> None:
    assert extract_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "No.",
        "nooo",
        "nope",
        "nah",
        "not really",
        "no thanks",
        "not ok",
        "of course not",
        "I can't make it",
        "I cant make it",
        "that doesn't work",
        "\N{THUMBS DOWN SIGN}",
    ],
)
def test_no(text: str) -> None:
    assert extract_yes_no(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hmm",
        "what?",
        "not sure",
        "I'm not sure",
        "maybe",
        "dunno",
        "yes but I can't make it",  # both: not for a script to guess
        "ok no",
        "yesterday",
        "know",
        "nobody",
        "nothing",
        "3pm",
    ],
)
def test_neither_yes_nor_no(text: str) -> None:
    assert extract_yes_no(text) is None


# --- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2),
        ("two", 2),
        ("Two", 2),
        ("3.5", 3.5),
        ("0", 0),
        ("zero", 0),
        ("1,000", 1000),
        ("-2", -2),
        ("twelve", 12),
        ("twenty", 20),
        ("twenty-five", 25),
        ("twenty five", 25),
        ("a hundred", 100),
        ("two hundred and five", 205),
        ("one thousand five hundred", 1500),
        ("twenty five hundred", 2500),
        ("five twenty", 5),  # not one number: the first
        ("there are 2 of us", 2),
        ("two of us, maybe 3", 2),
        ("maybe 3, or two", 3),
        ("I have 2.", 2),
        ("$3.50", 3.5),
    ],
)
def test_numbers(text: str, expected: float) -> None:
    found = extract_number(text)
    assert found == expected
    assert type(found) is type(expected)


@pytest.mark.parametrize("text", ["", "none", "3pm", "10:30", "2nd", "someone", "a1b", "v1.2.3"])
def test_not_numbers(text: str) -> None:
    assert extract_number(text) is None


@given(st.integers(-(10**12), 10**12))
def test_digits_read_back(number: int) -> None:
    assert extract_number(str(number)) == number
    assert extract_number(f"{number:,}") == number


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_decimals_read_back(whole: int, fraction: int) -> None:
    text = f"{whole}.{fraction}"
    assert extract_number(f"about {text} please") == float(text)


UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def in_words(n: int) -> str:
    """English words for 0 to 999,999, as a person might type them."""
    if n >= 1000:
        rest = n % 1000
        return f"{in_words(n // 1000)} thousand" + (f" {in_words(rest)}" if rest else "")
    if n >= 100:
        rest = n % 100
        return f"{UNITS[n // 100]} hundred" + (f" and {in_words(rest)}" if rest else "")
    if n >= 20:
        return TENS[n // 10 - 2] + (f"-{UNITS[n % 10]}" if n % 10 else "")
    return UNITS[n]


@given(st.integers(0, 999_999))
def test_numbers_in_words_read_back(number: int) -> None:
    assert extract_number(f"we are {in_words(number)} people") == number


# --- every extractor ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (ExtractorKind.TIME, "how about 3:30pm", "3:30pm"),
        (ExtractorKind.TIME, "twelve noon", "noon"),
        (ExtractorKind.DAY, "friday", "on Friday"),
        (ExtractorKind.DAY, "next monday", "next Monday"),
        (ExtractorKind.YES_NO, "yep", True),
        (ExtractorKind.YES_NO, "nope", False),
        (ExtractorKind.NUMBER, "two", 2),
        (ExtractorKind.NUMBER, "3.5", 3.5),
        (ExtractorKind.TIME, "hmm", None),
        (ExtractorKind.DAY, "hmm", None),
        (ExtractorKind.YES_NO, "hmm", None),
        (ExtractorKind.NUMBER, "hmm", None),
    ],
)
def test_extract_by_kind_gives_values_fit_to_store(kind: ExtractorKind, text: str, expected: object) -> None:
    assert extract(kind, text) == expected


def test_normalise() -> None:
    assert normalise("I\u2019d LIKE that, yesss") == "i'd like that, yess"


WORDS = [
    "3", "3pm", "10:30", "10.30", "am", "pm", "a.m.", "at", "noon", "o'clock", "on", "next", "friday", "fri",
    "tomorrow", "day", "after", "not", "from", "can't", "make", "yes", "no", "problem", "sure", "twenty",
    "five", "hundred", "thousand", "and", "-", "1,000", "3.5", ":", ".", "?", "\n", "\u2019",
    "\N{THUMBS UP SIGN}",
]  # fmt: skip
word_salad = st.lists(st.sampled_from(WORDS)).map(" ".join) | st.lists(st.sampled_from(WORDS)).map("".join)


@given(
    st.text() | st.lists(st.sampled_from(WORDS)).map(" ".join) | st.lists(st.sampled_from(WORDS)).map("".join)
)
def test_extractors_never_raise(text: str) -> None:
    for kind in ExtractorKind:
        value = extract(kind, text)
        assert value is None or isinstance(value, str | bool | int | float)
