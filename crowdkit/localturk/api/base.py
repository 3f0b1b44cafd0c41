"""What every requester operation shares: the market, its database, lookups that answer as
MTurk does for a missing or disposed entity, and UniqueRequestToken bookkeeping.

An operation is a function `(Requester, params) -> answer`; each family module (hits,
assignments, qualifications, workers, notifications, reviews) lists its own in OPERATIONS.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from crowdkit.localturk import params as check
from crowdkit.localturk import quals
from crowdkit.localturk.errors import RequestError, not_found, wrong_state
from crowdkit.localturk.market import REQUESTER_VISIBLE, Market
from crowdkit.localturk.params import Params

# MTurk API reference, CreateHIT: UniqueRequestToken "is valid for 24 hours".
TOKEN_LIFETIME_S = 24 * 3600

Answer = dict[str, Any]  # an operation's JSON answer


class Requester:
    """The one requester of this marketplace, as the operations see the market."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.db = market.db

    def now(self) -> float:
        return self.db.now()

    # --- entities ----------------------------------------------------------------------
    def hit(self, params: Params) -> sqlite3.Row:
        return self.market.require_hit(check.text(params, "HITId", 64))

    def undeleted_hit(self, hit_id: str) -> sqlite3.Row:
        """The HIT, refused as MTurk refuses changes to a deleted (Disposed) one."""
        hit = self.market.require_hit(hit_id)
        if hit["disposed"]:
            raise wrong_state("HIT", "Disposed", "Assignable, Unassignable, Reviewable, "
                              "Reviewing")
        return hit

    def hit_type(self, hit_type_id: str) -> sqlite3.Row:
        row = self.db.one("SELECT * FROM hit_types WHERE hit_type_id = ? AND deleted = 0",
                          (hit_type_id,))
        if row is None:
            raise not_found("HITType", hit_type_id)
        return row

    def assignment(self, assignment_id: str) -> sqlite3.Row:
        """A submitted, approved or rejected assignment (what MTurk shows a requester)."""
        row = self.market.assignment(assignment_id)
        if row is None or row["status"] not in REQUESTER_VISIBLE:
            raise not_found("Assignment", assignment_id)
        return row

    def own_type(self, type_id: str) -> sqlite3.Row:
        row = self.market.own_type(type_id)
        if row is None:
            raise RequestError(
                f"QualificationType {type_id} does not exist or is not owned by you.",
                "AWS.MechanicalTurk.QualificationTypeDoesNotExist")
        return row

    def known_type(self, type_id: str) -> str:
        """A system type or one of the requester's, for operations that take either."""
        if type_id not in quals.SYSTEM_TYPES:
            self.own_type(type_id)
        return type_id

    # --- UniqueRequestToken ------------------------------------------------------------
    def fresh_token(self, scope: str, params: Params) -> str | None:
        """The request's UniqueRequestToken, refused as MTurk does when already used."""
        token = check.token(params)
        if token is not None and self.used_token(scope, token) is not None:
            raise RequestError(f'The idempotency token "{token}" has already been processed.',
                               "AWS.MechanicalTurk.DuplicateRequest")
        return token

    def used_token(self, scope: str, token: str) -> str | None:
        """The result a token already produced within MTurk's 24-hour window, if any."""
        row = self.db.one(
            "SELECT result FROM request_tokens WHERE scope = ? AND token = ? AND created > ?",
            (scope, token, self.now() - TOKEN_LIFETIME_S),
        )
        return None if row is None else row["result"]

    def remember_token(self, scope: str, token: str | None, result: str) -> None:
        if token is not None:
            self.db.execute(
                "INSERT OR REPLACE INTO request_tokens (scope, token, created, result) "
                "VALUES (?, ?, ?, ?)",
                (scope, token, self.now(), result),
            )

    # --- events ------------------------------------------------------------------------
    def emit(self, event_type: str, hit: sqlite3.Row, assignment_id: str | None = None
             ) -> None:
        self.market.events.emit(event_type, self.now(), hit["hit_type_id"], hit["hit_id"],
                                assignment_id)


Operation = Callable[[Requester, Params], Answer]
