"""How fast `crowdkit collect` harvests and parses assignments from the local service.

Fills a LocalTurk with N submitted assignments (default 10,000: 100 HITs x 100), each a
realistic payload from a simulated participant, then times one full collect pass over
boto3 -- listing every page, storing every answer verbatim, parsing, judging and writing
the tidy files -- and, as the baseline in the same run, parsing alone.

Prints one JSON object: {"assignments", "seconds", "assignments_per_s", "parse_only_per_s",
"ratio"}, where ratio is the full pass's rate over parsing's: the share of collect's time
that is parsing rather than listing, storing and writing.

    .venv/bin/python benchmarks/collect.py [--assignments N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crowdkit.collect import collect, parse_answer  # noqa: E402
from crowdkit.ledger import Ledger  # noqa: E402
from crowdkit.localturk import LocalTurk, question_form_answers  # noqa: E402
from crowdkit.localturk.db import new_id  # noqa: E402
from crowdkit.platforms.mturk import MTurk  # noqa: E402
from crowdkit.simulate import SimulationSettings, answer_task, oracle  # noqa: E402
from crowdkit.templates import page_data, render_question  # noqa: E402
from tests.collect_helpers import designed_study  # noqa: E402

PER_HIT = 100


def fill(study, turk: LocalTurk, n: int) -> list[tuple[str, object]]:
    """Create HITs and n submitted assignments; return (answer XML, key) samples."""
    client = turk.boto3_client()
    rng = random.Random(0)
    settings = SimulationSettings(seed=0)
    with Ledger.open(study.db_path, write=True) as ledger:
        tasks = ledger.tasks()
        truth = oracle(ledger)
        hits = []
        for i in range((n + PER_HIT - 1) // PER_HIT):
            task = tasks[i % len(tasks)]
            slots = min(PER_HIT, n - i * PER_HIT)
            token = f"bench-{i}"
            ledger.record_hit_intent(target="local", request_token=token,
                                     task_id=task.public.task_id, part=i,
                                     max_assignments=slots, reward="0.50")
            hit = client.create_hit(
                Title="bench", Description="bench", Reward="0.50", MaxAssignments=slots,
                LifetimeInSeconds=86400, AssignmentDurationInSeconds=3600,
                Question=render_question(task.public, study.config, turk.file_url("")),
                UniqueRequestToken=token)["HIT"]
            ledger.record_hit_created(target="local", request_token=token,
                                      hit_id=hit["HITId"], hit_type_id=hit["HITTypeId"],
                                      expiration=None)
            hits.append((hit["HITId"], task, slots))
    samples = []
    rows = []
    now = turk.now()
    for hit_id, task, slots in hits:
        page = page_data(task.public, study.config, turk.file_url(""))  # what the page embeds
        for _ in range(slots):
            data = answer_task(page, truth, "careful", settings, rng)
            answer = question_form_answers([("data", json.dumps(data, separators=(",", ":")))])
            rows.append((new_id(), hit_id, f"ABENCH{len(rows):07d}", now - 600, now + 3000,
                         now, now + 86400, answer))
            if len(samples) < 2000:
                samples.append((answer, task.key))
    # Written straight into the service's database: going through the worker site 10,000
    # times would time localturk, not collect.
    with turk.db.transaction() as db:
        for row in rows:
            db.execute("INSERT INTO assignments (assignment_id, hit_id, worker_id, status, "
                       "accept_time, deadline, submit_time, auto_approval_time, answer) "
                       "VALUES (?, ?, ?, 'Submitted', ?, ?, ?, ?, ?)", row)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = designed_study(Path(tmp) / "study", tasks=20)
        with LocalTurk(Path(tmp) / "turk.db", port=0) as turk:
            samples = fill(study, turk, args.assignments)
            client = turk.boto3_client()
            start = time.perf_counter()
            result = collect(study, MTurk(study.config, "local", client=client))
            seconds = time.perf_counter() - start
        assert len(result.dataset.records) == args.assignments
        assert all(r.parsed.valid for r in result.dataset.records)
        start = time.perf_counter()
        rounds = 0
        while time.perf_counter() - start < 2 or rounds == 0:
            for xml, key in samples:
                parse_answer(xml, key)
            rounds += 1
        parse_only = rounds * len(samples) / (time.perf_counter() - start)
    print(json.dumps({"assignments": args.assignments, "seconds": round(seconds, 2),
                      "assignments_per_s": round(args.assignments / seconds, 1),
                      "parse_only_per_s": round(parse_only, 1),
                      "ratio": round(args.assignments / seconds / parse_only, 3)}))


if __name__ == "__main__":
    main()
