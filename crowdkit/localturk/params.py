"""Reading the requester API's parameters as MTurk does: required, ranged, money, paging.

Each check raises the ParameterValidationError MTurk answers for that kind of bad input.

Paging: a NextToken names the last item of the page it came with, never a position, so a
list that changes between pages neither skips nor repeats an item. As MTurk does, every
page that has items carries a NextToken (MTurk does not know that a page is the last), and
the page after the last one comes back empty without one; so both loops third-party tools
write, `while "NextToken" in page` and `while page["HITs"]`, end.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, overload

from crowdkit.localturk.errors import ParameterValidationError, missing, out_of_range
from crowdkit.localturk.fees import CENT

DEFAULT_PAGE_SIZE = 10
_MONEY = re.compile(r"^[0-9]+(\.)?[0-9]{0,2}$")


# A request's parameters are its JSON body: any JSON value under each name, checked here.
Params = dict[str, Any]


def required(params: Params, name: str) -> Any:  # a JSON value: the caller checks its type
    value = params.get(name)
    if value is None or value == "":
        raise missing(name)
    return value


@overload
def text(params: Params, name: str, max_len: int, *, needed: Literal[True] = True) -> str: ...


@overload
def text(params: Params, name: str, max_len: int, *, needed: bool) -> str | None: ...


def text(params: Params, name: str, max_len: int, *, needed: bool = True) -> str | None:
    value = required(params, name) if needed else params.get(name)
    if value is None:
        return None
    return _checked_text(name, value, max_len)


def present_text(params: Params, name: str, max_len: int) -> str:
    """A member that must be there but may be empty (RejectAssignment's RequesterFeedback:
    botocore requires it, MTurk accepts "")."""
    value = params.get(name)
    if value is None:
        raise missing(name)
    return _checked_text(name, value, max_len)


def _checked_text(name: str, value: object, max_len: int) -> str:
    if not isinstance(value, str):
        raise out_of_range(name, value, "It must be a string.")
    if len(value) > max_len:
        raise out_of_range(name, f"{value[:20]}...", f"It must be at most {max_len} characters.")
    return value


def boolean(params: Params, name: str, default: bool = False) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise out_of_range(name, value, "It must be true or false.")
    return value


def choice(params: Params, name: str, allowed: tuple[str, ...], default: str | None = None
           ) -> str:
    """One of an enum's values (botocore's model lists them)."""
    value = params.get(name, default)
    if value is None:
        raise missing(name)
    if value not in allowed:
        raise out_of_range(name, value, f"It must be one of {', '.join(allowed)}.")
    return str(value)


def integer(params: Params, name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = params.get(name, default)
    if value is None:
        raise missing(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise out_of_range(name, value, "It must be a whole number.")
    if not lo <= value <= hi:
        raise out_of_range(name, value, f"It must be between {lo} and {hi}.")
    return value


def money(params: Params, name: str, minimum: Decimal) -> Decimal:
    """An amount as MTurk takes it on the wire ("0.50"). Not units.parse_money: that one
    also reads "$0.50" from study.toml, and a test double must refuse what MTurk refuses."""
    value = required(params, name)
    if not isinstance(value, str) or not _MONEY.match(value):
        raise out_of_range(name, value, "It must be an amount such as 0.50 (USD).")
    amount = Decimal(value).quantize(CENT)  # the pattern leaves nothing Decimal cannot read
    if amount < minimum:
        raise out_of_range(name, value, f"It must be at least {minimum}.")
    return amount


def timestamp(params: Params, name: str) -> float:
    value = required(params, name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise out_of_range(name, value, "It must be a timestamp.") from exc


def token(params: Params) -> str | None:
    return text(params, "UniqueRequestToken", 64, needed=False)


def page(params: Params, scope: str) -> tuple[int, int]:
    """(size, sort key after which to continue) from MaxResults and NextToken."""
    size = integer(params, "MaxResults", 1, 100, DEFAULT_PAGE_SIZE)
    token = params.get("NextToken")
    if token is None:
        return size, -1
    try:
        if not isinstance(token, str):
            raise TypeError(token)
        kind, _, after = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind != scope:
            raise ValueError(kind)
        return size, int(after)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ParameterValidationError(
            f"The NextToken {token!r} is not valid for this operation.",
            "AWS.MechanicalTurk.InvalidPaginationToken") from exc


def listing(scope: str, list_name: str, items: list[dict], keys: list[int]) -> dict:
    """A list operation's answer: NumResults, the items (always, [] when none), NextToken."""
    out: dict = {"NumResults": len(items), list_name: items}
    if keys:
        out["NextToken"] = base64.urlsafe_b64encode(f"{scope}:{keys[-1]}".encode()).decode()
    return out


def drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


