"""What publishing commits the account to: rewards, the platform's fees, expected bonuses."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crowdkit.platforms.base import Platform
from crowdkit.publish.plan import HitPlan
from crowdkit.study import StudyConfig
from crowdkit.units import money_str


@dataclass
class Cost:
    """The itemised cost of a set of HITs; every amount a Decimal in USD."""

    hits: int = 0
    assignments: int = 0
    reward: Decimal = Decimal("0.00")
    rewards: Decimal = Decimal("0.00")
    commission: Decimal = Decimal("0.00")
    masters_fee: Decimal = Decimal("0.00")
    bonuses: Decimal = Decimal("0.00")
    bonus_fees: Decimal = Decimal("0.00")
    large_hits: int = 0
    bonus_note: str = ""
    fee_label: str = "fee"
    extra_fee_label: str = "extra fee"
    bonus_fee_label: str = "fee on bonuses"

    @property
    def total(self) -> Decimal:
        return (self.rewards + self.commission + self.masters_fee + self.bonuses
                + self.bonus_fees)

    def lines(self) -> list[tuple[str, Decimal]]:
        """The items as (label, amount), in the order a researcher checks them."""
        items = [
            (f"rewards: {self.assignments} assignments x ${money_str(self.reward)}",
             self.rewards),
            (self.fee_label, self.commission),
        ]
        if self.masters_fee:
            items.append((self.extra_fee_label, self.masters_fee))
        if self.bonuses:
            items.append((f"expected bonuses ({self.bonus_note})", self.bonuses))
            items.append((self.bonus_fee_label, self.bonus_fees))
        items.append(("total", self.total))
        return items

    def to_json(self) -> dict[str, Any]:
        return {"hits": self.hits, "assignments": self.assignments,
                **{k: money_str(v) for k, v in (
                    ("reward", self.reward), ("rewards", self.rewards),
                    ("commission", self.commission), ("masters_fee", self.masters_fee),
                    ("bonuses", self.bonuses), ("bonus_fees", self.bonus_fees),
                    ("total", self.total))}}


def estimate_cost(plans: list[HitPlan], config: StudyConfig, platform: Platform) -> Cost:
    """What creating `plans` commits the account to, if every assignment is approved."""
    reward = config.hit.reward
    bonus = config.review.bonus if config.review.bonus_rule != "none" else Decimal(0)
    cost = Cost(reward=reward,
                fee_label=platform.fee_label([p.max_assignments for p in plans]),
                extra_fee_label=platform.extra_fee_label,
                bonus_fee_label=platform.bonus_fee_label)
    for plan in plans:
        commission, extra_fee = platform.assignment_fees(reward, plan.max_assignments)
        cost.hits += 1
        cost.assignments += plan.max_assignments
        cost.rewards += reward * plan.max_assignments
        cost.commission += commission * plan.max_assignments
        cost.masters_fee += extra_fee * plan.max_assignments
        if bonus > 0:
            cost.bonuses += bonus * plan.max_assignments
            cost.bonus_fees += platform.bonus_fee(bonus) * plan.max_assignments
    if bonus > 0:
        who = "every" if config.review.bonus_rule == "all" else "at most every"
        cost.bonus_note = f"${money_str(bonus)} to {who} assignment"
    return cost


def format_cost(cost: Cost) -> str:
    width = max(len(label) for label, _ in cost.lines())
    return "\n".join(f"  {label:<{width}}  ${money_str(amount):>10}"
                     for label, amount in cost.lines())
