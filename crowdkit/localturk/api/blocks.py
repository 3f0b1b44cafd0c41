"""Reaching and barring workers: worker blocks and NotifyWorkers."""

from __future__ import annotations

from crowdkit.localturk import params as check
from crowdkit.localturk.api.base import Answer, Operation, Requester
from crowdkit.localturk.errors import out_of_range
from crowdkit.localturk.params import Params


def create_worker_block(api: Requester, params: Params) -> Answer:
    """MTurk API reference, CreateWorkerBlock: the worker can no longer work on your HITs
    (on the worker site: a blocked worker finds none and cannot accept one). Blocking a
    blocked worker again keeps the block and takes the new reason."""
    worker_id = check.text(params, "WorkerId", 64)
    reason = check.text(params, "Reason", 1024)
    api.db.execute(
        "INSERT INTO worker_blocks (rowid, worker_id, reason, created) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(worker_id) DO UPDATE SET reason = excluded.reason",
        (api.db.next_rowid("worker_blocks"), worker_id, reason, api.now()))
    return {}


def delete_worker_block(api: Requester, params: Params) -> Answer:
    """MTurk API reference, DeleteWorkerBlock: reinstates the worker; a worker who is not
    blocked is no error."""
    worker_id = check.text(params, "WorkerId", 64)
    check.text(params, "Reason", 1024, needed=False)
    api.db.execute("DELETE FROM worker_blocks WHERE worker_id = ?", (worker_id,))
    return {}


def list_worker_blocks(api: Requester, params: Params) -> Answer:
    size, after = check.page(params, "blocks")
    rows = api.db.all("SELECT rowid AS rid, * FROM worker_blocks WHERE rowid > ? "
                      "ORDER BY rowid LIMIT ?", (after, size))
    return check.listing("blocks", "WorkerBlocks",
                         [{"WorkerId": r["worker_id"], "Reason": r["reason"]} for r in rows],
                         [r["rid"] for r in rows])


def notify_workers(api: Requester, params: Params) -> Answer:
    """Messages reach workers you have approved or rejected work from (MTurk's rule);
    the others come back as HardFailure. They show on the worker site's HIT list."""
    subject = check.text(params, "Subject", 200)
    message = check.text(params, "MessageText", 4096)
    worker_ids = check.required(params, "WorkerIds")
    if not isinstance(worker_ids, list) or not 1 <= len(worker_ids) <= 100:
        raise out_of_range("WorkerIds", len(worker_ids) if isinstance(worker_ids, list)
                           else worker_ids, "Give between 1 and 100 ids.")
    failures = []
    for worker_id in worker_ids:
        reviewed = api.db.one(
            "SELECT 1 FROM assignments WHERE worker_id = ? AND status IN "
            "('Approved', 'Rejected') LIMIT 1", (worker_id,))
        if reviewed is None:
            failures.append({
                "NotifyWorkersFailureCode": "HardFailure",
                "NotifyWorkersFailureMessage": (
                    f"Cannot notify worker {worker_id}: you have not approved or "
                    "rejected any of their assignments."),
                "WorkerId": worker_id,
            })
            continue
        api.db.execute(
            "INSERT INTO notifications (worker_id, subject, message, time) "
            "VALUES (?, ?, ?, ?)", (worker_id, subject, message, api.now()))
    return {"NotifyWorkersFailureStatuses": failures}


OPERATIONS: dict[str, Operation] = {
    "CreateWorkerBlock": create_worker_block,
    "DeleteWorkerBlock": delete_worker_block,
    "ListWorkerBlocks": list_worker_blocks,
    "NotifyWorkers": notify_workers,
}
