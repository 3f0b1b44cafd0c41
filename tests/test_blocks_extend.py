"""Blocking workers (review's blocks of fraud, `crowdkit block` / `unblock`) and extending a
study's lifetime (`crowdkit extend`), each recorded in the ledger and safe to repeat."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdkit.blocks import block_workers
from crowdkit.collect import collect
from crowdkit.collect.dataset import pseudonym
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.localturk import LocalTurk
from crowdkit.platforms import mturk as turk
from crowdkit.platforms.base import PlatformError
from crowdkit.platforms.mturk import MTurk
from crowdkit.publish import publish
from crowdkit.review import review
from crowdkit.status import expire, extend
from crowdkit.store import LocalStore
from crowdkit.study import Study, load_study
from tests.collect_helpers import BlockingFakeMTurk, payload, study_with_hits, task_keys
from tests.factories import make_study


def with_review(study: Study, toml: str) -> Study:
    with study.toml_path.open("a") as f:
        f.write("\n[review]\n" + toml)
    return load_study(study.root)


@pytest.fixture
def fraud(tmp_path: Path) -> tuple[Study, BlockingFakeMTurk, dict[str, str]]:
    """A good answer, and two tampered ones of the same worker; collected."""
    study = study_with_hits(tmp_path / "study")
    keys = task_keys(study)
    fake = BlockingFakeMTurk(page_size=100)
    tampered = payload(keys["t0002"])
    tampered["trials"][2]["correct"] = True  # a field only an edited request sends
    again = payload(keys["t0003"])
    again["trials"][0]["rt_ms"] = -1
    ids = {"good": fake.add("HIT0000", "AGOOD", payload(keys["t0000"])),
           "tampered": fake.add("HIT0002", "ACHEAT", tampered),
           "again": fake.add("HIT0003", "ACHEAT", again)}
    collect(study, MTurk(study.config, "local", client=fake))
    fake.calls.clear()
    return study, fake, ids


def blocks(study: Study) -> dict:
    with Ledger.open(study.db_path) as ledger:
        return {w: dict(r) for w, r in ledger.blocks("local").items()}


def test_review_blocks_a_frauds_worker_once_when_the_policy_says_so(fraud):
    study, fake, ids = fraud
    study = with_review(study, "block_fraud = true\n")
    lines: list[str] = []
    result = review(study, MTurk(study.config, "local", client=fake),
                    on_plan=lambda plan: lines.append(plan.describe()))
    assert result.rejected == 2 and result.blocked == 1
    with Ledger.open(study.db_path) as ledger:
        cheat = pseudonym(ledger.pseudonym_key(), "ACHEAT")
    assert f"block 1 worker whose answers were tampered with ([review] block_fraud): {cheat}" \
        in lines[0]
    assert fake.blocked == {"ACHEAT": study.config.review.block_reason}
    assert fake.count("create_worker_block") == 1
    row = blocks(study)["ACHEAT"]
    assert (row["blocked"], row["status"]) == (1, "done")
    assert row["assignment_id"] in (ids["tampered"], ids["again"])
    assert review(study, MTurk(study.config, "local", client=fake)) is None  # nothing left
    assert fake.count("create_worker_block") == 1


def test_review_blocks_nobody_by_default(fraud):
    study, fake, _ = fraud
    result = review(study, MTurk(study.config, "local", client=fake))
    assert result.rejected == 2 and result.blocked == 0 and fake.blocked == {}


def test_a_worker_the_researcher_unblocked_is_never_blocked_again(fraud):
    study, fake, _ = fraud
    study = with_review(study, "block_fraud = true\n")
    platform = MTurk(study.config, "local", client=fake)
    fake.fail.add("create_worker_block")  # the block fails once: retried by the next review
    first = review(study, platform)
    assert first.failures and fake.blocked == {}
    assert blocks(study)["ACHEAT"]["status"] == "failed"
    unblocked = block_workers(study, platform, ["ACHEAT"], reason="", blocked=False)
    assert unblocked.done == ["ACHEAT"]
    assert review(study, platform) is None  # the researcher's unblock stands
    assert fake.count("create_worker_block") == 1


def test_an_unblock_whose_call_failed_is_not_undone_by_review(fraud):
    study, fake, _ = fraud
    study = with_review(study, "block_fraud = true\n")
    platform = MTurk(study.config, "local", client=fake)
    review(study, platform)
    assert "ACHEAT" in fake.blocked
    fake.fail.add("delete_worker_block")  # the researcher's unblock fails this time
    block_workers(study, platform, ["ACHEAT"], reason="", blocked=False)
    assert blocks(study)["ACHEAT"]["blocked"] == 0
    review(study, platform)
    assert fake.count("create_worker_block") == 1  # not blocked again
    assert blocks(study)["ACHEAT"]["blocked"] == 0  # the unblock request stands, to finish


def test_block_takes_a_pseudonym_from_the_exports_and_repeats_safely(fraud):
    study, fake, _ = fraud
    with Ledger.open(study.db_path) as ledger:
        good = pseudonym(ledger.pseudonym_key(), "AGOOD")
    platform = MTurk(study.config, "local", client=fake)
    result = block_workers(study, platform, [good], reason="spam in the comments")
    assert result.done == ["AGOOD"] and fake.blocked == {"AGOOD": "spam in the comments"}
    again = block_workers(study, platform, [good], reason="spam")
    assert again.done == [] and again.already == ["AGOOD"]
    assert fake.count("create_worker_block") == 1
    with pytest.raises(CrowdkitError, match="no participant of this study has that pseudonym"):
        block_workers(study, platform, ["p0123456789abcdef"], reason="x")
    undone = block_workers(study, platform, [good], reason="", blocked=False)
    assert undone.done == ["AGOOD"] and fake.blocked == {}


def test_block_and_unblock_on_the_local_twin_through_the_cli(fraud, tmp_path, monkeypatch,
                                                             capsys):
    study, _, _ = fraud
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        client = service.boto3_client()
        import crowdkit.cli as cli

        monkeypatch.setattr(cli, "_platform", lambda s, target: MTurk(s.config, "local",
                                                                      client=client))
        for argv in (["block", str(study.root), "AGOOD", "--reason", "bot"],
                     ["unblock", str(study.root), "AGOOD"], ["block", str(study.root), "ABOT"]):
            monkeypatch.setattr(sys, "argv", ["crowdkit", *argv])
            with pytest.raises(SystemExit) as exited:
                cli.main()
            assert exited.value.code == 0, capsys.readouterr().err
        listed = client.list_worker_blocks(MaxResults=100)["WorkerBlocks"]
    assert [b["WorkerId"] for b in listed] == ["ABOT"]
    assert "blocked 1 worker" in capsys.readouterr().out
    assert {w: r["blocked"] for w, r in blocks(study).items()} == {"AGOOD": 0, "ABOT": 1}


# --------------------------------------------------------------------------- extend


@pytest.fixture
def published(tmp_path: Path):
    root = make_study(tmp_path / "s")
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        study = load_study(root)
        platform = MTurk(study.config, "local", client=service.boto3_client())
        publish(study, platform, store=LocalStore(service.files_dir, service.base_url))
        yield study, platform, service


def expirations(service) -> dict[str, datetime]:
    return {h["HITId"]: h["Expiration"]
            for h in turk.paginate(service.boto3_client().list_hits, "HITs")}


def test_extend_keeps_every_open_hit_open_longer(published):
    study, platform, service = published
    before = expirations(service)
    result = extend(study, platform, by_s=2 * 86400, yes=True)
    assert result.extended == 4 and result.failures == []
    after = expirations(service)
    for hit_id, when in before.items():
        assert after[hit_id] - when == timedelta(days=2)
    with Ledger.open(study.db_path) as ledger:
        rows = {r["hit_id"]: r for r in ledger.hits("local")}
        extensions = ledger.conn.execute("SELECT status FROM hit_extensions").fetchall()
    assert [e["status"] for e in extensions] == ["done"] * 4
    for hit_id, when in after.items():
        assert datetime.fromisoformat(rows[hit_id]["expiration"]) == when
    assert extend(study, platform, by_s=3600, yes=True).extended == 4  # once more: an hour


def test_an_interrupted_extension_is_finished_not_repeated(published, monkeypatch):
    study, platform, service = published
    before = expirations(service)
    real = platform.extend_posting
    calls: list[str] = []

    def flaky(posting_id: str, expire_at: datetime) -> None:
        calls.append(posting_id)
        if len(calls) == 2:
            raise PlatformError("the network went away")
        real(posting_id, expire_at)

    monkeypatch.setattr(platform, "extend_posting", flaky)
    first = extend(study, platform, by_s=86400, yes=True)
    assert first.extended == 3 and len(first.failures) == 1
    second = extend(study, platform, by_s=86400, yes=True)
    assert second.resumed and second.extended == 1 and "finished an interrupted" in \
        second.summary()
    after = expirations(service)
    assert all(after[h] - before[h] == timedelta(days=1) for h in before)  # each once


def test_an_extension_whose_answer_was_lost_is_not_sent_again(published, monkeypatch):
    """The call went through but the answer was lost (a crash, a timeout): MTurk already
    holds the new time, and sending it again would be an extension of 0 s, which MTurk
    refuses. The next run reads the HIT and only records the extension as done."""
    study, platform, service = published
    before = expirations(service)
    real = platform.extend_posting
    calls: list[str] = []

    def answer_lost(posting_id: str, expire_at: datetime) -> None:
        calls.append(posting_id)
        real(posting_id, expire_at)
        if len(calls) == 1:
            raise PlatformError("the connection dropped before MTurk's answer came")

    monkeypatch.setattr(platform, "extend_posting", answer_lost)
    first = extend(study, platform, by_s=86400, yes=True)
    assert first.extended == 3 and len(first.failures) == 1
    monkeypatch.setattr(platform, "extend_posting", real)
    second = extend(study, platform, by_s=86400, yes=True)
    assert second.resumed and second.extended == 1 and second.failures == []
    after = expirations(service)
    assert all(after[h] - before[h] == timedelta(days=1) for h in before)
    with Ledger.open(study.db_path) as ledger:
        last = ledger.conn.execute(
            "SELECT status FROM hit_extensions WHERE hit_id = ? ORDER BY rowid DESC LIMIT 1",
            (calls[0],)).fetchone()
    assert last["status"] == "done"


def test_an_unfinished_extension_never_reopens_a_hit_expired_since(published, monkeypatch):
    study, platform, service = published
    real = platform.extend_posting

    def failing(posting_id: str, expire_at: datetime) -> None:
        raise PlatformError("the network went away")

    monkeypatch.setattr(platform, "extend_posting", failing)
    assert len(extend(study, platform, by_s=86400, yes=True).failures) == 4
    monkeypatch.setattr(platform, "extend_posting", real)
    assert expire(study, platform, yes=True) == 4
    with pytest.raises(CrowdkitError, match="no open HITs of this study to extend"):
        extend(study, platform, by_s=3600, yes=True)
    now = datetime.now(UTC)
    assert all(when <= now for when in expirations(service).values())


def test_extend_reopens_lapsed_hits_from_now_and_leaves_expired_ones(published):
    study, platform, service = published
    hits = sorted(expirations(service))
    with Ledger.open(study.db_path, write=True) as ledger:  # one ended by `crowdkit expire`
        ledger.set_hit_status(hits[0], "expired")
    service.advance_clock(4 * 86400)  # past the 3-day lifetime of the others
    now = datetime.now(UTC) + timedelta(days=4)
    result = extend(study, platform, by_s=86400, yes=True, now=now)
    assert result.extended == 3
    after = expirations(service)
    for hit_id in hits[1:]:
        assert abs(after[hit_id] - (now + timedelta(days=1))) < timedelta(minutes=5)


def test_extend_refuses_more_than_a_year_and_asks_first(published):
    study, platform, service = published
    with pytest.raises(CrowdkitError, match="MTurk takes at most a year from now"):
        extend(study, platform, by_s=400 * 86400, yes=True)
    with pytest.raises(CrowdkitError, match="not confirmed; no HIT was extended"):
        extend(study, platform, by_s=86400, confirm=lambda q: False)
    assert expire(study, platform, yes=True) == 4
    with pytest.raises(CrowdkitError, match="no open HITs of this study to extend"):
        extend(study, platform, by_s=86400, yes=True)


def test_a_review_whose_calls_failed_exits_non_zero(fraud, monkeypatch, capsys):
    study, fake, _ = fraud
    fake.fail.add("reject_assignment")
    import crowdkit.cli as cli

    monkeypatch.setattr(cli, "_platform", lambda s, target: MTurk(s.config, "local",
                                                                  client=fake))
    monkeypatch.setattr(sys, "argv", ["crowdkit", "review", str(study.root), "--yes",
                                      "--no-progress"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 4
    err = capsys.readouterr().err
    assert f"run `crowdkit review {study.root}` again to do the rest" in err
    with pytest.raises(SystemExit) as exited:  # the platform answers again: all done, exit 0
        cli.main()
    assert exited.value.code == 0
