"""MTurk's fees: 20 % of the reward (40 % on HITs with 10 or more assignments), 5 % more
for Masters, at least one cent; 20 % on bonuses. The local twin keeps its own copy of these
rules (crowdkit.localturk.fees), so a test comparing the two means something."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from crowdkit.units import CENT

BASE_FEE = Decimal("0.20")
LARGE_HIT_FEE = Decimal("0.20")  # on top of the base fee, for HITs with 10+ assignments
LARGE_HIT_ASSIGNMENTS = 10
MASTERS_FEE = Decimal("0.05")
MIN_FEE = CENT


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def assignment_fees(reward: Decimal, max_assignments: int, masters: bool
                    ) -> tuple[Decimal, Decimal]:
    """(commission, Masters fee) MTurk charges on one assignment's reward.

    The Masters share is split off the rounded total so the two add up to what MTurk takes.
    """
    rate = BASE_FEE + (LARGE_HIT_FEE if max_assignments >= LARGE_HIT_ASSIGNMENTS else 0)
    total = max(MIN_FEE, _round(reward * (rate + (MASTERS_FEE if masters else 0))))
    masters_fee = _round(reward * MASTERS_FEE) if masters else Decimal(0)
    return total - masters_fee, masters_fee


def bonus_fee(amount: Decimal) -> Decimal:
    """MTurk's fee on one bonus: 20 %, at least $0.01."""
    return max(MIN_FEE, _round(amount * BASE_FEE)) if amount > 0 else Decimal(0)
