"""MTurk's fee schedule, so the local balance drains the way a real account would.

MTurk charges 20 % of each reward and bonus, 20 % more on the rewards of HITs with 10 or
more assignments, 5 % more when a HIT requires the Masters qualification, and at least
$0.01 per assignment or bonus payment. Fees are rounded half up to the cent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
BASE_RATE = Decimal("0.20")
LARGE_HIT_RATE = Decimal("0.20")
LARGE_HIT_ASSIGNMENTS = 10
MASTERS_RATE = Decimal("0.05")
MINIMUM_FEE = CENT


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def commission_rate(max_assignments: int, masters: bool) -> Decimal:
    """The share of the reward MTurk takes for one assignment of this HIT."""
    rate = BASE_RATE
    if max_assignments >= LARGE_HIT_ASSIGNMENTS:
        rate += LARGE_HIT_RATE
    if masters:
        rate += MASTERS_RATE
    return rate


def assignment_fee(reward: Decimal, max_assignments: int, masters: bool = False) -> Decimal:
    """MTurk's fee for one approved assignment."""
    return max(MINIMUM_FEE, _round(reward * commission_rate(max_assignments, masters)))


def bonus_fee(amount: Decimal) -> Decimal:
    """MTurk's fee for one bonus payment (the 10-assignment surcharge does not apply)."""
    return max(MINIMUM_FEE, _round(amount * BASE_RATE))
