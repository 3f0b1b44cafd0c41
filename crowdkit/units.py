"""Value types of study.toml: durations ("45m", "3d") and money ("1.25", never a float);
and counts spelt for people ("1 assignment", "2 assignments")."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_DURATION_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_MONEY = re.compile(r"^\d+(\.\d{1,2})?$")
CENT = Decimal("0.01")


def parse_duration(value: object) -> int:
    """Turn "45m", "3d", "1h30m" or "90s" into whole seconds.

    Plain numbers are refused on purpose: "3" could mean seconds, minutes or days.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f'expected a duration such as "45m" or "3d", got {value!r}')
    text = value.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f'expected a duration such as "45m", "3d" or "1h30m", got {value!r}')
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in parts)


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a duration, for messages and dumps."""
    if seconds == 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s"):
        n, seconds = divmod(seconds, _DURATION_SECONDS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def stored_time(value: str | None) -> datetime | None:
    """A time as crowdkit stores it (ISO 8601; UTC when unmarked) as an aware datetime;
    None when absent or unreadable, so a damaged ledger value reads as unknown."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_money(value: object) -> Decimal:
    """Turn a decimal string such as "1.25" into an exact Decimal (USD).

    Floats are refused: 0.1 + 0.2 is not 0.3, and money must add up to the cent.
    """
    if isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().lstrip("$")
    else:
        raise ValueError(
            f'expected money as a decimal string such as "1.25" (quoted), got {value!r}'
        )
    if not _MONEY.match(text):
        raise ValueError(f'expected money as a decimal string such as "1.25", got {value!r}')
    try:
        return Decimal(text).quantize(CENT)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"not an amount of money: {value!r}") from exc


def money_str(amount: Decimal) -> str:
    """Format money the way MTurk wants it: two decimals, no currency sign."""
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


Duration = Annotated[int, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
Money = Annotated[Decimal, BeforeValidator(parse_money), PlainSerializer(money_str)]


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """"1 assignment", "2 assignments", "0 HITs": a count with its noun in the right number.

    `plural_form` is for nouns that do not just take an "s" ("1 query", "2 queries").
    """
    word = singular if n == 1 else (plural_form or singular + "s")
    return f"{n} {word}"
