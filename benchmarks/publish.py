"""Publish 1,000 HITs to the local service, against a bare boto3 loop in the same run.

Prints one JSON object: {"hits", "seconds", "hits_per_s", "baseline_hits_per_s",
"overhead_ratio"}. `seconds` covers `crowdkit.publish.publish` on an already designed study:
rendering every question, hosting the images, qualifications, the ledger's intent and
created records (fsynced), and the CreateHITWithHITType calls. The baseline creates the
same number of HITs with one pre-rendered question in a plain loop, with no ledger, so the
ratio shows what safety and resumability cost.

    .venv/bin/python benchmarks/publish.py [--hits 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crowdkit.design import design_study  # noqa: E402
from crowdkit.localturk import LocalTurk  # noqa: E402
from crowdkit.platforms import mturk as turk  # noqa: E402
from crowdkit.publish import publish  # noqa: E402
from crowdkit.store import LocalStore  # noqa: E402
from crowdkit.study import load_study  # noqa: E402
from tests.factories import make_study  # noqa: E402


def bare_loop(client, question: str, n: int) -> float:
    hit_type = client.create_hit_type(
        Title="baseline", Description="baseline", Reward="0.50",
        AssignmentDurationInSeconds=600)["HITTypeId"]
    start = time.perf_counter()
    for _ in range(n):
        client.create_hit_with_hit_type(HITTypeId=hit_type, MaxAssignments=1,
                                        LifetimeInSeconds=86400, Question=question)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_study(Path(tmp) / "bench", tasks=args.hits, trials=8, catch=2, practice=2)
        study = load_study(root)
        design_study(study)
        with LocalTurk(Path(tmp) / "turk.db", port=0) as service:
            client = turk.mturk_client("local", local_endpoint=service.endpoint_url)
            start = time.perf_counter()
            result = publish(study, turk.MTurk(study.config, "local", client=client),
                             store=LocalStore(service.files_dir, service.base_url))
            seconds = time.perf_counter() - start
            question = next(turk.paginate(client.list_hits, "HITs"))["Question"]
        with LocalTurk(Path(tmp) / "baseline.db", port=0) as service:
            baseline = bare_loop(service.boto3_client(), question, args.hits)
    hits = result.created
    print(json.dumps({
        "hits": hits,
        "seconds": round(seconds, 3),
        "hits_per_s": round(hits / seconds, 1),
        "baseline_hits_per_s": round(args.hits / baseline, 1),
        "overhead_ratio": round(seconds / baseline, 2),
    }))


if __name__ == "__main__":
    main()
