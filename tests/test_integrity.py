"""Study integrity: two studies never share a HIT, a ledger from before v2 keeps working, and
nothing a worker downloads -- names, bytes, sizes, page data -- tells the answer."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from crowdkit.design import design_study
from crowdkit.errors import CrowdkitError
from crowdkit.images import pixel_size, served_bytes
from crowdkit.ledger import Ledger
from crowdkit.ledger_schema import SCHEMA_V1
from crowdkit.localturk import LocalTurk
from crowdkit.platforms import mturk as turk
from crowdkit.platforms.base import ForeignPosting
from crowdkit.platforms.mturk import MTurk
from crowdkit.publish import publish
from crowdkit.store import LocalStore
from crowdkit.study import load_study
from tests.factories import make_study


@pytest.fixture
def service(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as twin:
        yield twin


def publish_to(study, service, **kwargs):
    platform = MTurk(study.config, "local", client=service.boto3_client())
    return publish(study, platform, store=LocalStore(service.files_dir, service.base_url),
                   **kwargs)


def ledger_hits(study) -> list[sqlite3.Row]:
    with Ledger.open(study.db_path) as ledger:
        return ledger.hits("local")


# ------------------------------------------------------------------ no HIT is shared


def test_two_studies_with_the_same_name_keep_their_own_hits(tmp_path, service):
    first = load_study(make_study(tmp_path / "a", name="pilot"))
    second = load_study(make_study(tmp_path / "b", name="pilot"))  # "a new study directory"
    assert publish_to(first, service).created == 4
    result = publish_to(second, service)
    assert (result.created, result.resumed) == (4, 0)  # nothing adopted from the first

    ids_a = {r["hit_id"] for r in ledger_hits(first)}
    ids_b = {r["hit_id"] for r in ledger_hits(second)}
    assert len(ids_a) == len(ids_b) == 4 and not ids_a & ids_b
    account = list(turk.paginate(service.boto3_client().list_hits, "HITs"))
    assert len(account) == 8
    with Ledger.open(first.db_path) as a, Ledger.open(second.db_path) as b:
        owners = {"a": a.study_id(), "b": b.study_id()}
    assert owners["a"] != owners["b"]
    for hit in account:
        owner = hit["RequesterAnnotation"].split(";study=")[1]
        assert owner == (owners["a"] if hit["HITId"] in ids_a else owners["b"])


def test_a_hit_another_study_made_is_never_adopted_when_resuming(tmp_path, service):
    first = load_study(make_study(tmp_path / "a", name="pilot"))
    publish_to(first, service)
    theirs = ledger_hits(first)[0]
    second = load_study(make_study(tmp_path / "b", name="pilot"))
    design_study(second)
    with Ledger.open(second.db_path, write=True) as ledger:  # as if its token were theirs
        ledger.record_hit_intent(target="local", request_token=theirs["request_token"],
                                 task_id="t0000", part=0, max_assignments=1, reward="0.50")
    with pytest.raises(ForeignPosting) as caught:
        publish_to(second, service)
    assert f"HIT {theirs['hit_id']} was made by another crowdkit study" in str(caught.value)
    assert len(caught.value.lines) == 1
    assert all(r["hit_id"] is None for r in ledger_hits(second))


def test_a_token_another_study_used_is_refused_at_creation(tmp_path, service):
    first = load_study(make_study(tmp_path / "a", name="pilot"))
    publish_to(first, service)
    theirs = ledger_hits(first)[0]
    second = load_study(make_study(tmp_path / "b", name="pilot"))
    with Ledger.open(tmp_path / "b" / "study.db", write=True) as ledger:
        platform = MTurk(second.config, "local", client=service.boto3_client())
        platform.prepare(ledger)
        with pytest.raises(ForeignPosting, match="refusing to adopt it"):
            platform.create_posting(
                request_token=theirs["request_token"], task_id="t0000", max_assignments=1,
                question=service.boto3_client().get_hit(HITId=theirs["hit_id"])["HIT"]
                ["Question"], lifetime_s=3600, owner=ledger.study_id())


# ------------------------------------------------------------------ ledgers before v2


def v1_ledger(path: Path, *, with_hit: bool) -> None:
    """A ledger as crowdkit wrote it before schema v2 (no study id, no image secret)."""
    conn = sqlite3.connect(path)
    for statement in SCHEMA_V1.strip().split(";\n"):
        if statement.strip() and "TRIGGER" not in statement:
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('pseudonym_key', ?)", ("ab" * 32,))
    if with_hit:  # an intent a v1 publish left, with its token derived from the name
        conn.execute(
            "INSERT INTO hits (target, request_token, task_id, part, max_assignments, reward,"
            " status, created_at, updated_at) VALUES ('local', 'ck-legacy0000', 't0000', 0, 1,"
            " '0.50', 'intent', '2024-01-01', '2024-01-01')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_v1_ledger_migrates_and_keeps_its_tokens_and_image_keys(tmp_path, service):
    root = make_study(tmp_path / "s")
    study = load_study(root)
    v1_ledger(study.db_path, with_hit=True)
    with Ledger.open(study.db_path, write=True) as ledger:
        assert ledger.conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert len(ledger.study_id()) == 32
        assert ledger.image_secret() is None  # its HITs' pages name content-hash keys
        assert ledger.pseudonym_key() == bytes.fromhex("ab" * 32)
    result = publish_to(study, service)
    assert result.hits_total == 4 and result.created + result.resumed == 4
    rows = {r["task_id"]: r for r in ledger_hits(study)}
    assert rows["t0000"]["request_token"] == "ck-legacy0000"  # the recorded token is kept
    with Ledger.open(study.db_path) as ledger:
        images = ledger.images()
    assert all(row["path"].startswith("stimuli/") or "catch" in row["path"]
               for row in images.values())


def test_a_v1_ledger_without_hits_gets_an_image_secret(tmp_path):
    v1_ledger(tmp_path / "study.db", with_hit=False)
    with Ledger.open(tmp_path / "study.db", write=True) as ledger:
        assert ledger.image_secret() is not None and len(ledger.study_id()) == 32


# ------------------------------------------------------------------ nothing tells the answer


def served_study(tmp_path: Path, **options):
    study = load_study(make_study(tmp_path / "s", **options))
    design_study(study)
    with Ledger.open(study.db_path) as ledger:
        tasks = ledger.tasks()
        files = {key: study.root / row["path"] for key, row in ledger.images().items()}
    return study, tasks, files


def pixels(path: Path) -> bytes:
    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


def test_catch_copies_are_keyed_with_the_ledgers_secret(tmp_path):
    study, tasks, files = served_study(tmp_path, catch=3)
    n_catch = 0
    for task in tasks:
        for trial, key in zip(task.public.trials, task.key.trials, strict=True):
            if key.phase != "catch":
                continue
            n_catch += 1
            copy = files[getattr(trial.queries, key.max_position)]
            shown = [files[k] for k in (*trial.references.left, *trial.references.right)]
            assert pixels(copy) in {pixels(p) for p in shown}  # attention answers it
            data = copy.read_bytes()
            assert data not in {p.read_bytes() for p in shown}
            # nothing a worker can compute from the page marks the copy
            for nonce in (f"{trial.trial_id}:max", f"{trial.trial_id}:min"):
                digest = hashlib.sha256(nonce.encode()).hexdigest()
                assert digest[:16].encode() not in data and digest.encode() not in data
            assert b"crowdkit" not in data and b"tEXt" not in data
    assert n_catch == 3 * 4


def test_every_image_of_a_pixel_size_has_one_length(tmp_path):
    study, tasks, files = served_study(tmp_path, catch=2)
    lengths = defaultdict(set)
    for path in files.values():
        lengths[(path.suffix, *pixel_size(path))].add(path.stat().st_size)
    assert lengths and all(len(sizes) == 1 for sizes in lengths.values()), lengths
    for task in tasks:  # so the max query and a catch copy are as long as any other image
        for trial in task.public.trials:
            top, bottom = files[trial.queries.top], files[trial.queries.bottom]
            assert top.stat().st_size == bottom.stat().st_size


def test_images_of_different_sizes_are_padded_per_pixel_size(tmp_path):
    study = load_study(make_study(tmp_path / "s", catch=1))
    big = study.stimuli_dir / "u0" / "b0" / "max_3.png"
    noisy = Image.effect_noise((8, 8), 90).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    big.write_bytes(buffer.getvalue())  # a far longer file of the same pixel size
    manifest = json.loads(study.manifest_path.read_text())
    for batch in manifest["units"][0]["natural"]["batches"]:
        for ref in batch["max"]:
            ref.pop("sha256", None)
    study.manifest_path.write_text(json.dumps(manifest))
    design_study(study)
    with Ledger.open(study.db_path) as ledger:
        sizes = {row["bytes"] for row in ledger.images().values()}
    assert sizes == {len(buffer.getvalue()) + 28}


def test_jpeg_padding_keeps_the_pixels_and_hits_the_length_exactly(tmp_path):
    buffer = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    for length in (len(data) + 20, len(data) + 65_537 + 3, len(data) + 300_000):
        padded = served_bytes(data, ".jpg", b"k" * 16, length)
        assert len(padded) == length
        with Image.open(io.BytesIO(padded)) as a, Image.open(io.BytesIO(data)) as b:
            assert a.tobytes() == b.tobytes()
    with pytest.raises(CrowdkitError, match="cannot pad"):
        served_bytes(data, ".jpg", b"k" * 16, len(data) + 3)


def test_dry_run_pages_give_no_answer_away_by_name_metadata_or_size(tmp_path):
    study = load_study(make_study(tmp_path / "s", conditions='["natural", "none"]',
                                  assignment="within", catch=2, tasks=2))
    publish(study, MTurk(study.config, "sandbox"), dry_run=True)
    with Ledger.open(study.db_path) as ledger:
        keys = {t.key.task_id: {k.trial_id: k for k in t.key.trials} for t in ledger.tasks()}
    files = study.root / "dry-run" / "files"
    assert len({p.stat().st_size for p in files.iterdir()}) == 1  # one pixel size, one length
    for page in sorted((study.root / "dry-run").glob("*.html")):
        data = json.loads(page.read_text().split('id="task-data">', 1)[1]
                          .split("</script>", 1)[0])
        trial_keys = keys[data["task"]]
        shape: dict[str, set[str]] = defaultdict(set)
        for item in data["trials"]:
            key = trial_keys[item["id"]]
            if key.phase == "practice":
                continue
            # catch and main trials of a condition look the same in the page data
            shape[item["cond"]].add(json.dumps({k: v for k, v in item.items() if k != "id"},
                                               sort_keys=True))
        assert {c: len(s) for c, s in shape.items()} == {"natural": 1, "none": 1}, shape
        assert all(k.condition != "none" for k in trial_keys.values() if k.phase == "catch")
