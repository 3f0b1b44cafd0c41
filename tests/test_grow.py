"""Studies that grow: more assignments per task, or more tasks, published again.

Additions go to open HITs within MTurk's rule (a HIT made with fewer than 10 assignments
never reaches 10), new HITs take the rest, the itemised cost comes first, and a run killed
between the call and its record is finished without adding twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from crowdkit.ledger import Ledger
from crowdkit.localturk import FaultConfig, LocalTurk
from crowdkit.platforms import mturk as turk
from crowdkit.platforms.mturk import MTurk
from crowdkit.publish import CRASH_ENV, publish
from crowdkit.store import LocalStore
from crowdkit.study import load_study
from tests.factories import make_study

REPO = Path(__file__).resolve().parent.parent
PUBLISH_SCRIPT = """
import sys
from crowdkit.platforms.mturk import MTurk, mturk_client
from crowdkit.publish import publish
from crowdkit.store import LocalStore
from crowdkit.study import load_study

root, endpoint, files_dir = sys.argv[1:4]
study = load_study(root)
publish(study, MTurk(study.config, "local",
                     client=mturk_client("local", local_endpoint=endpoint)),
        store=LocalStore(files_dir, endpoint), workers=2)
print("finished")
"""


@pytest.fixture
def service(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as twin:
        yield twin


def set_hit(root: Path, key: str, value: str) -> None:
    path = root / "study.toml"
    text = re.sub(rf"(?m)^{key} = .*\n", "", path.read_text())
    path.write_text(text.replace("[hit]\n", f"[hit]\n{key} = {value}\n", 1))


def set_tasks(root: Path, tasks: int) -> None:
    path = root / "study.toml"
    path.write_text(re.sub(r"(?m)^tasks = \d+$", f"tasks = {tasks}", path.read_text()))


def run(root: Path, service, **kwargs):
    study = load_study(root)
    shown: list[str] = []
    result = publish(study, MTurk(study.config, "local", client=service.boto3_client()),
                     store=LocalStore(service.files_dir, service.base_url),
                     on_plan=shown.extend, **kwargs)
    return result, shown


def account(service) -> dict[str, dict]:
    return {h["HITId"]: h for h in turk.paginate(service.boto3_client().list_hits, "HITs")}


def hit_sizes(root: Path) -> dict[tuple[str, int], int]:
    with Ledger.open(root / "study.db") as ledger:
        return {(r["task_id"], r["part"]): r["max_assignments"] for r in ledger.hits("local")}


def test_raising_assignments_adds_them_to_the_hits_with_the_cost_first(tmp_path, service):
    root = make_study(tmp_path / "s", assignments=1)
    run(root, service)
    set_hit(root, "assignments_per_task", "3")

    dry, shown = run(root, service, dry_run=True)
    assert "cost of the 8 assignments to add to 4 existing HITs (local):" in shown
    assert any("rewards: 8 assignments (8 added to existing HITs) x $0.50" in s for s in shown)
    assert dry.cost.total == Decimal("4.80")  # 8 x $0.50 and MTurk's 20 %
    assert all(h["MaxAssignments"] == 1 for h in account(service).values())  # nothing sent

    result, shown = run(root, service)
    assert (result.created, result.added) == (0, 8)
    assert sorted(h["MaxAssignments"] for h in account(service).values()) == [3] * 4
    assert set(hit_sizes(root).values()) == {3}
    with Ledger.open(root / "study.db") as ledger:
        assert [a["status"] for a in ledger.additions("local")] == ["done"] * 4

    again, _ = run(root, service)
    assert (again.created, again.added) == (0, 0)
    assert any("nothing to create" in n for n in again.notes)


def test_a_hit_made_with_fewer_than_10_never_reaches_10_so_new_hits_take_the_rest(
        tmp_path, service):
    root = make_study(tmp_path / "s", assignments=5, tasks=2)
    set_hit(root, "max_assignments_per_hit", "20")
    run(root, service)
    set_hit(root, "assignments_per_task", "12")
    result, shown = run(root, service)
    assert (result.created, result.added) == (2, 8)  # each 5 -> 9, and a new HIT of 3
    assert hit_sizes(root) == {("t0000", 0): 9, ("t0000", 1): 3, ("t0001", 0): 9,
                               ("t0001", 1): 3}
    assert sorted(h["MaxAssignments"] for h in account(service).values()) == [3, 3, 9, 9]


def test_more_tasks_add_hits_and_keep_the_published_tasks(tmp_path, service):
    root = make_study(tmp_path / "s", tasks=4)
    run(root, service)
    with Ledger.open(root / "study.db") as ledger:
        before = [t.public.model_dump_json() for t in ledger.tasks()]
    set_tasks(root, 6)
    result, shown = run(root, service)
    assert result.created == 2 and result.hits_total == 6
    with Ledger.open(root / "study.db") as ledger:
        tasks = ledger.tasks()
        hits = ledger.hits("local")
    assert [t.public.model_dump_json() for t in tasks[:4]] == before
    assert [t.public.task_id for t in tasks] == [f"t{i:04d}" for i in range(6)]
    assert sorted(h["task_id"] for h in hits) == [f"t{i:04d}" for i in range(6)]
    assert len(account(service)) == 6


def test_fewer_tasks_or_another_change_is_still_refused(tmp_path, service):
    root = make_study(tmp_path / "s", tasks=4)
    run(root, service)
    set_tasks(root, 3)
    with pytest.raises(Exception, match="the design changed"):
        run(root, service)


def start(root: Path, service, crash_at: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), **{CRASH_ENV: crash_at})
    return subprocess.Popen([sys.executable, "-c", PUBLISH_SCRIPT, str(root),
                             service.endpoint_url, str(service.files_dir)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("crash_at", "forget_tokens"), [
    ("addition-intent:2", False),    # intent written, the call never made
    ("addition-returned:1", False),  # the call made, its answer never recorded
    ("addition-returned:3", True),   # ... and MTurk has forgotten the token since
])
def test_a_killed_growth_is_finished_without_adding_twice(tmp_path, service, crash_at,
                                                          forget_tokens):
    root = make_study(tmp_path / "s", assignments=2)
    run(root, service)
    set_hit(root, "assignments_per_task", "5")
    proc = start(root, service, crash_at)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    if forget_tokens:
        service.advance_clock(25 * 3600)
    run(root, service)
    assert sorted(h["MaxAssignments"] for h in account(service).values()) == [5] * 4
    assert set(hit_sizes(root).values()) == {5}
    with Ledger.open(root / "study.db") as ledger:
        done = [a for a in ledger.additions("local") if a["status"] == "done"]
    assert sorted(a["added"] for a in done) == [3] * 4


def test_throttled_growth_still_adds_exactly_once(tmp_path):
    root = make_study(tmp_path / "s", assignments=1)
    throttled = FaultConfig(throttle_rate=0.3, seed=5)
    with LocalTurk(tmp_path / "turk.db", port=0, fault=throttled) as service:
        client = turk.mturk_client("local", local_endpoint=service.endpoint_url)
        study = load_study(root)
        store = LocalStore(service.files_dir, service.base_url)
        publish(study, MTurk(study.config, "local", client=client), store=store)
        set_hit(root, "assignments_per_task", "4")
        study = load_study(root)
        result = publish(study, MTurk(study.config, "local", client=client), store=store)
        assert result.added == 12
        service.set_faults(FaultConfig())
        assert sorted(h["MaxAssignments"] for h in account(service).values()) == [4] * 4
