"""What publishing commits the account to: rewards, the platform's fees, expected bonuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crowdkit.platforms.base import Platform
from crowdkit.publish.plan import AddPlan, HitPlan
from crowdkit.study import StudyConfig
from crowdkit.units import money_str, plural


@dataclass
class Cost:
    """The itemised cost of a set of HITs; every amount a Decimal in USD."""

    hits: int = 0
    assignments: int = 0
    added: int = 0  # of `assignments`, those added to HITs that exist
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
        on_existing = f" ({self.added} added to existing HITs)" if self.added else ""
        items = [
            (f"rewards: {plural(self.assignments, 'assignment')}{on_existing} x "
             f"${money_str(self.reward)}", self.rewards),
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
        return {"hits": self.hits, "assignments": self.assignments, "added": self.added,
                **{k: money_str(v) for k, v in (
                    ("reward", self.reward), ("rewards", self.rewards),
                    ("commission", self.commission), ("masters_fee", self.masters_fee),
                    ("bonuses", self.bonuses), ("bonus_fees", self.bonus_fees),
                    ("total", self.total))}}


def estimate_cost(plans: list[HitPlan], config: StudyConfig, platform: Platform,
                  additions: Sequence[AddPlan] = ()) -> Cost:
    """What creating `plans` and making `additions` commits the account to, if every
    assignment is approved. An addition is paid at its HIT's reward and fee rate."""
    reward = config.hit.reward
    bonus = config.review.bonus if config.review.bonus_rule != "none" else Decimal(0)
    sizes = [p.max_assignments for p in plans] + [a.before + a.add for a in additions]
    cost = Cost(reward=reward, fee_label=platform.fee_label(sizes),
                extra_fee_label=platform.extra_fee_label,
                bonus_fee_label=platform.bonus_fee_label)
    items = [(reward, p.max_assignments, p.max_assignments) for p in plans]
    items += [(a.reward, a.add, a.before + a.add) for a in additions]
    for each, count, hit_size in items:
        commission, extra_fee = platform.assignment_fees(each, hit_size)
        cost.assignments += count
        cost.rewards += each * count
        cost.commission += commission * count
        cost.masters_fee += extra_fee * count
        if bonus > 0:
            cost.bonuses += bonus * count
            cost.bonus_fees += platform.bonus_fee(bonus) * count
    cost.hits = len(plans)
    cost.added = sum(a.add for a in additions)
    if bonus > 0:
        who = "every" if config.review.bonus_rule == "all" else "at most every"
        cost.bonus_note = f"${money_str(bonus)} to {who} assignment"
    return cost


def format_cost(cost: Cost) -> str:
    width = max(len(label) for label, _ in cost.lines())
    return "\n".join(f"  {label:<{width}}  ${money_str(amount):>10}"
                     for label, amount in cost.lines())
