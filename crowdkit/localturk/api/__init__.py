"""The requester API: all 39 of MTurk's JSON operations (botocore's model, 2017-01-17).

`RequesterAPI.call(operation, params)` takes the operation name (the part of X-Amz-Target
after the dot) and the decoded JSON body, and returns the JSON answer or raises a
`TurkError`. Member names follow botocore's model of MTurk; semantics follow MTurk's API
reference (docs/localturk.md lists what differs). Each call runs in one transaction: a
refused call changes nothing. The operations live by family:

- hits: HIT types and HITs (create, get, list, extend, expire, retype, delete)
- reviews: reviewable HITs, review status, review policy results
- assignments: submitted work, approval, rejection, bonuses, the balance
- qualifications: qualification types, workers' qualifications, qualification requests
- blocks: worker blocks and NotifyWorkers
- notifications: HIT event notification settings and test events
"""

from __future__ import annotations

from crowdkit.localturk.api import (
    assignments,
    blocks,
    hits,
    notifications,
    qualifications,
    reviews,
)
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.errors import UnknownOperation
from crowdkit.localturk.market import Market
from crowdkit.localturk.params import Params

OPERATIONS: dict[str, Operation] = {
    **hits.OPERATIONS, **reviews.OPERATIONS, **assignments.OPERATIONS,
    **qualifications.OPERATIONS, **blocks.OPERATIONS, **notifications.OPERATIONS,
}


class RequesterAPI:
    """Dispatches MTurk operations by name to their functions (OPERATIONS)."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.db = market.db
        self.requester = Requester(market)

    def call(self, operation: str, params: Params) -> Answer:
        function = OPERATIONS.get(operation)
        if function is None:
            raise UnknownOperation(operation)
        self.market.settle()
        with self.db.transaction():
            answer = function(self.requester, params or {})
            self.market.sweep_events(self.db.now())  # HITReviewable, HITExpired at once
            return answer


__all__ = ["OPERATIONS", "RequesterAPI"]
