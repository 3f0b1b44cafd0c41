"""Publishing to the local service: HIT counts, qualifications, cost, dry run, status, expire.

Crash/resume and throttling live in tests/test_publish_resume.py.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.localturk import LocalTurk
from crowdkit.platforms import mturk as turk
from crowdkit.platforms.mturk import MTurk
from crowdkit.platforms.mturk.fees import assignment_fees, bonus_fee
from crowdkit.platforms.mturk.quals import qualification_requirements, study_qualification_name
from crowdkit.publish import estimate_cost, plan_hits, publish, resolve_target, split_assignments
from crowdkit.status import expire, format_duration_left, study_status
from crowdkit.store import LocalStore
from crowdkit.study import load_study, parse_study_toml
from crowdkit.units import parse_duration
from tests.factories import make_study

D = Decimal


def add_config(root: Path, text: str) -> None:
    path = root / "study.toml"
    path.write_text(path.read_text() + "\n" + text)


@pytest.fixture
def turk_service(tmp_path):
    with LocalTurk(tmp_path / "turk.db", port=0) as service:
        yield service


def on(study, client, target: str | None = "local") -> MTurk:
    """The study's MTurk platform at `target` (None: as publish resolves it), via `client`."""
    return MTurk(study.config, resolve_target(study, target), client=client)


def run_publish(study, service, **kwargs):
    platform = on(study, service.boto3_client(), kwargs.pop("target", "local"))
    return publish(study, platform, store=LocalStore(service.files_dir, service.base_url),
                   **kwargs)


def account_hits(client) -> list[dict]:
    return list(turk.paginate(client.list_hits, "HITs"))


# ----------------------------------------------------------------------------------------
# Planning and money
# ----------------------------------------------------------------------------------------


def test_assignments_are_split_into_hits_of_at_most_nine_by_default():
    assert split_assignments(9, 9) == [9]
    assert split_assignments(10, 9) == [5, 5]
    assert split_assignments(20, 9) == [7, 7, 6]
    assert split_assignments(20, 100) == [20]  # splitting off: one HIT, the 40 % fee
    plans = plan_hits(["a", "b"], "s", 20, 9)
    assert [(p.task_id, p.part, p.max_assignments) for p in plans] == [
        ("a", 0, 7), ("a", 1, 7), ("a", 2, 6), ("b", 0, 7), ("b", 1, 7), ("b", 2, 6)]
    assert len({p.request_token for p in plans}) == 6
    assert all(len(p.request_token) <= 64 for p in plans)
    # Tokens depend on the ledger's study id and the task only: every run asks for the
    # same HITs, and another ledger (whatever its study's name) for others.
    assert plans == plan_hits(["a", "b"], "s", 20, 9)
    assert plans[0].request_token != plan_hits(["a"], "other", 20, 9)[0].request_token


def test_fees_follow_mturk_pricing():
    assert assignment_fees(D("0.50"), 9, False) == (D("0.10"), D("0"))
    assert assignment_fees(D("0.50"), 10, False) == (D("0.20"), D("0"))  # 40 % at 10+
    assert assignment_fees(D("1.00"), 9, True) == (D("0.20"), D("0.05"))  # Masters +5 %
    assert assignment_fees(D("0.01"), 1, False) == (D("0.01"), D("0"))  # $0.01 minimum
    assert bonus_fee(D("0.25")) == D("0.05")
    assert bonus_fee(D("0.01")) == D("0.01")


def test_cost_is_itemised_with_fees_masters_and_expected_bonuses(tmp_path):
    root = make_study(tmp_path / "s", assignments=1)
    add_config(root, '[qualifications]\nmasters = true\n\n[review]\nbonus = "0.25"\n'
                     'bonus_rule = "all"\n')
    config = load_study(root).config
    cost = estimate_cost(plan_hits(["a", "b"], "s", 12, 12), config,
                         MTurk(config, "local"))  # 2 HITs of 12
    assert cost.rewards == D("12.00")  # 24 x 0.50
    assert cost.commission == D("4.80")  # 40 %
    assert cost.masters_fee == D("0.72")  # 5 % = 0.025 -> 0.03 per assignment
    assert cost.bonuses == D("6.00") and cost.bonus_fees == D("1.20")
    assert cost.total == D("24.72")
    labels = [label for label, _ in cost.lines()]
    assert labels[0].startswith("rewards: 24 assignments x $0.50")
    assert "MTurk fee (40 %)" in labels and "Masters fee (+5 %)" in labels
    assert cost.to_json()["total"] == "24.72"


def test_requirements_from_config_and_study_qualifications():
    config = parse_study_toml("""
[study]
name = "s"
[hit]
title = "t"
description = "d"
reward = "0.10"
[qualifications]
min_approval_rate = 98
min_approved_hits = 500
locales = ["US", "us-ny"]
masters = true
""")
    reqs = qualification_requirements(config, "live", "OWNQUAL", ["OTHERQUAL"])
    by_type = {r["QualificationTypeId"]: r for r in reqs}
    assert by_type[turk.PERCENT_APPROVED]["IntegerValues"] == [98]
    assert by_type[turk.NUMBER_APPROVED]["IntegerValues"] == [500]
    assert by_type[turk.LOCALE]["Comparator"] == "In"
    assert by_type[turk.LOCALE]["LocaleValues"] == [
        {"Country": "US"}, {"Country": "US", "Subdivision": "NY"}]
    assert by_type[turk.MASTERS["live"]]["Comparator"] == "Exists"
    assert by_type["OWNQUAL"]["Comparator"] == "DoesNotExist"
    assert by_type["OTHERQUAL"]["Comparator"] == "DoesNotExist"
    sandbox = qualification_requirements(config, "sandbox", "OWNQUAL", [])
    assert turk.MASTERS["sandbox"] in {r["QualificationTypeId"] for r in sandbox}


# ----------------------------------------------------------------------------------------
# Publishing to the local service
# ----------------------------------------------------------------------------------------


def test_publish_creates_exactly_one_hit_per_task_part_with_qualifications(tmp_path,
                                                                           turk_service):
    root = make_study(tmp_path / "s", assignments=12)
    add_config(root, '[qualifications]\nexclude_studies = ["pilot"]\n'
                     'expert_qualification = "crowdkit-experts"\n')
    study = load_study(root)
    client = turk_service.boto3_client()
    result = run_publish(study, turk_service)
    assert result.hits_total == 8 and result.created == 8  # 4 tasks x 2 parts of 6
    hits = account_hits(client)
    assert sorted(h["MaxAssignments"] for h in hits) == [6] * 8
    with Ledger.open(study.db_path) as ledger:
        rows = ledger.hits("local")
        own = ledger.qualification_type_id("local", study_qualification_name(study.name))
        pilot = ledger.qualification_type_id("local", study_qualification_name("pilot"))
        expert = ledger.qualification_type_id("local", "crowdkit-experts")
        study_id = ledger.study_id()
    assert {r["hit_id"] for r in rows} == {h["HITId"] for h in hits}
    assert all(r["status"] == "created" and r["reward"] == "0.50" for r in rows)
    assert own and pilot and expert
    for hit in hits:
        reqs = {r["QualificationTypeId"]: r for r in hit["QualificationRequirements"]}
        assert reqs[own]["Comparator"] == "DoesNotExist"
        assert reqs[pilot]["Comparator"] == "DoesNotExist"
        assert reqs[turk.PERCENT_APPROVED]["IntegerValues"] == [95]
        assert reqs[turk.LOCALE]["LocaleValues"] == [{"Country": "US"}]
        token, owner = hit["RequesterAnnotation"].split(";study=")
        assert token in {r["request_token"] for r in rows} and owner == study_id
    # The images the pages name are served by the local service.
    question = hits[0]["Question"]
    assert turk_service.base_url + "/files/" in question
    assert len(list(turk_service.files_dir.iterdir())) == result.uploaded
    assert result.preview_url == turk_service.worker_url

    again = run_publish(study, turk_service)
    assert again.created == 0 and again.already == 8 and again.uploaded == 0
    assert len(account_hits(client)) == 8
    quals = turk.paginate(client.list_qualification_types, "QualificationTypes",
                          MustBeRequestable=False, MustBeOwnedByCaller=True)
    names = sorted(q["Name"] for q in quals)
    assert names == sorted(["crowdkit:teststudy", "crowdkit:pilot", "crowdkit-experts"])


def test_qualification_made_by_a_run_that_died_is_found_by_name(tmp_path, turk_service):
    study = load_study(make_study(tmp_path / "s"))
    client = turk_service.boto3_client()
    made = client.create_qualification_type(
        Name="crowdkit:teststudy", Description="x", QualificationTypeStatus="Active")
    run_publish(study, turk_service)
    with Ledger.open(study.db_path) as ledger:
        assert ledger.qualification_type_id("local", "crowdkit:teststudy") == \
            made["QualificationType"]["QualificationTypeId"]


def test_dry_run_renders_every_hit_and_calls_nothing(tmp_path):
    study = load_study(make_study(tmp_path / "s", assignments=10))

    class NoRemote:
        def __getattr__(self, name):
            raise AssertionError(f"dry run called {name}")

    lines = []
    result = publish(study, on(study, NoRemote(), "live"), dry_run=True, on_plan=lines.extend)
    out = study.root / "dry-run"
    assert result.dry_run_dir == out
    assert len(list(out.glob("*.html"))) == 8 == len(list(out.glob("*.xml")))  # 4 x [5, 5]
    sizes = (out / "sizes.csv").read_text().splitlines()
    assert sizes[0] == "task_id,part,max_assignments,download_bytes" and len(sizes) == 9
    assert lines[0].startswith("8 HITs (4 tasks); download per HIT")
    assert re.search(r"^\s+total\s+\$\s+24\.00$", "\n".join(lines), re.MULTILINE)
    xml = next(out.glob("*.xml")).read_text()
    assert xml.startswith("<HTMLQuestion") and "http://127.0.0.1:8765/files/" in xml
    # The pages read their images from a copy next to them, so they open from disk.
    with Ledger.open(study.db_path) as ledger:
        keys = set(ledger.images())
    assert {p.name for p in (out / "files").iterdir()} == keys
    page = next(out.glob("*.html")).read_text()
    assert '"base":"files/"' in page and "127.0.0.1:8765" not in page


def test_live_needs_the_target_on_the_command_line_and_a_confirmation(tmp_path, turk_service):
    root = make_study(tmp_path / "s")
    add_config(root, '[mturk]\ntarget = "live"\n')
    study = load_study(root)
    with pytest.raises(CrowdkitError, match="--target live"):
        run_publish(study, turk_service, target=None)
    asked = []
    with pytest.raises(CrowdkitError, match="not confirmed"):
        run_publish(study, turk_service, target="live",
                    confirm=lambda q: asked.append(q) or False)
    assert asked and "$" in asked[0]
    assert account_hits(turk_service.boto3_client()) == []


def test_refuses_when_the_balance_cannot_cover_the_cost(tmp_path):
    study = load_study(make_study(tmp_path / "s", assignments=9))
    with LocalTurk(tmp_path / "poor.db", port=0, starting_balance="5.00") as poor:
        with pytest.raises(CrowdkitError, match=r"balance is \$5.00.*\$21.60"):
            run_publish(study, poor)
        assert account_hits(poor.boto3_client()) == []


def test_local_target_without_a_service_says_how_to_start_one(tmp_path):
    root = make_study(tmp_path / "s")
    add_config(root, '[mturk]\nlocal_endpoint = "http://127.0.0.1:9"\n')
    with pytest.raises(CrowdkitError, match="crowdkit serve --port 9"):
        study = load_study(root)
        publish(study, MTurk(study.config, "local"))


def test_sandbox_and_live_need_a_bucket(tmp_path):
    study = load_study(make_study(tmp_path / "s"))
    with LocalTurk(tmp_path / "t.db", port=0) as service, \
            pytest.raises(CrowdkitError, match=r"\[storage\] bucket"):
        publish(study, on(study, service.boto3_client(), "sandbox"), yes=True)


# ----------------------------------------------------------------------------------------
# Endpoints (stub credentials, no network)
# ----------------------------------------------------------------------------------------


def stub_session():
    import boto3

    return boto3.session.Session(aws_access_key_id="AKIASTUB", aws_secret_access_key="stub",
                                 region_name="eu-west-1")


@pytest.mark.parametrize("target, url", [
    ("sandbox", "https://mturk-requester-sandbox.us-east-1.amazonaws.com"),
    ("live", "https://mturk-requester.us-east-1.amazonaws.com"),
])
def test_sandbox_and_live_endpoints_in_us_east_1_with_retries(target, url):
    client = turk.mturk_client(target, session=stub_session())
    assert client.meta.endpoint_url == url
    assert client.meta.region_name == "us-east-1"
    retries = client.meta.config.retries
    assert retries["mode"] == "standard"
    assert retries["total_max_attempts"] == turk.DEFAULT_MAX_ATTEMPTS
    assert turk.preview_url(target, "GROUP1").endswith("/mturk/preview?groupId=GROUP1")
    assert ("workersandbox" in turk.preview_url(target, "G")) == (target == "sandbox")


def test_local_endpoint_comes_from_config_and_uses_dummy_credentials():
    client = turk.mturk_client("local", local_endpoint="http://127.0.0.1:8999/")
    assert client.meta.endpoint_url == "http://127.0.0.1:8999"
    assert client._request_signer._credentials.access_key == "local"


def test_missing_credentials_for_sandbox_is_one_clear_error(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CrowdkitError, match="no AWS credentials"):
        turk.mturk_client("sandbox")


def test_token_already_used_errors_are_recognised():
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": "RequestError", "Message":
                                 'The HIT with ID "3ABCDEFGHIJKLMNOPQRSTUVWXYZ012" already '
                                 "exists. (1700000000000)"},
                       "TurkErrorCode": "AWS.MechanicalTurk.HitAlreadyExists"},
                      "CreateHITWithHITType")
    assert turk.is_token_already_used(exc)
    other = ClientError({"Error": {"Code": "RequestError", "Message": "Reward too low"}},
                        "CreateHITWithHITType")
    assert not turk.is_token_already_used(other)


# ----------------------------------------------------------------------------------------
# Status and expire
# ----------------------------------------------------------------------------------------


def test_status_counts_money_and_time_left(tmp_path, turk_service):
    study = load_study(make_study(tmp_path / "s", assignments=3))
    run_publish(study, turk_service)
    status = study_status(study, on(study, turk_service.boto3_client()))
    total = status.to_json()["total"]
    assert total["hits"] == 4 and total["available"] == 12 and total["submitted"] == 0
    assert total["spent"] == "0.00"
    assert total["committed"] == "7.20"  # 12 x (0.50 + 0.10)
    assert 0 < total["seconds_left"] <= 3 * 86400
    json.dumps(status.to_json())


def test_time_left_is_spelt_like_study_toml_durations():
    assert format_duration_left(0) == "expired"
    assert format_duration_left(45) == "45s"
    assert format_duration_left(3725) == "1h2m"  # to the minute under a day
    assert format_duration_left(3 * 86400 + 4 * 3600 + 50) == "3d4h"  # to the hour past one
    assert parse_duration(format_duration_left(90061)) == 90000


def test_expire_touches_only_this_studys_hits(tmp_path, turk_service):
    study = load_study(make_study(tmp_path / "s"))
    client = turk_service.boto3_client()
    run_publish(study, turk_service)
    other = client.create_hit(
        Title="someone else's", Description="d", Reward="0.10", MaxAssignments=1,
        AssignmentDurationInSeconds=600, LifetimeInSeconds=86400,
        Question=next(iter(account_hits(client)))["Question"])["HIT"]["HITId"]
    with pytest.raises(CrowdkitError, match="not confirmed"):
        expire(study, on(study, client), confirm=lambda q: False)
    assert expire(study, on(study, client), yes=True) == 4
    statuses = {h["HITId"]: h["HITStatus"] for h in account_hits(client)}
    assert statuses.pop(other) == "Assignable"
    assert set(statuses.values()) == {"Reviewable"}
    assert expire(study, on(study, client), yes=True) == 0
    # An expired HIT is never published again.
    again = run_publish(study, turk_service)
    assert again.created == 0 and len(account_hits(client)) == 5


def test_a_refused_create_is_one_line_and_a_rerun_finishes(tmp_path, turk_service):
    from botocore.exceptions import ClientError

    study = load_study(make_study(tmp_path / "s"))
    real = turk_service.boto3_client()

    class RefusesThird:
        calls = 0

        def __getattr__(self, name):
            return getattr(real, name)

        def create_hit_with_hit_type(self, **kwargs):
            RefusesThird.calls += 1
            if RefusesThird.calls == 3:
                raise ClientError({"Error": {"Code": "RequestError",
                                             "Message": "Your account is suspended."}},
                                  "CreateHITWithHITType")
            return real.create_hit_with_hit_type(**kwargs)

    with pytest.raises(CrowdkitError, match="Your account is suspended.*run publish again"):
        publish(study, on(study, RefusesThird()), workers=1,
                store=LocalStore(turk_service.files_dir, turk_service.base_url))
    assert len(account_hits(real)) == 2  # one call at a time: the fourth never started
    with Ledger.open(study.db_path) as ledger:
        assert sum(r["status"] == "created" for r in ledger.hits("local")) == 2
    result = run_publish(study, turk_service)
    assert result.already == 2 and result.created == 2
    assert len(account_hits(real)) == 4


def test_sandbox_publish_hosts_images_on_s3_and_needs_public_read(tmp_path, turk_service,
                                                                  monkeypatch):
    """The S3 path end to end: moto for S3, the local service standing in for MTurk."""
    import boto3
    from moto import mock_aws

    from crowdkit.store import S3Store

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    root = make_study(tmp_path / "s")
    add_config(root, '[storage]\nbucket = "lab-stimuli"\nprefix = "studies"\n')
    study = load_study(root)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lab-stimuli")

        def go(**kwargs):
            store = S3Store("lab-stimuli", prefix="studies", study_name=study.name, client=s3)
            return publish(study, on(study, turk_service.boto3_client(), "sandbox"),
                           store=store, **kwargs)

        with pytest.raises(CrowdkitError, match="--apply-bucket-policy"):
            go()
        assert account_hits(turk_service.boto3_client()) == []
        result = go(apply_bucket_policy=True)
        assert result.created == 4
        listed = s3.list_objects_v2(Bucket="lab-stimuli", Prefix="studies/teststudy/")
        assert listed["KeyCount"] == result.uploaded > 0
        question = account_hits(turk_service.boto3_client())[0]["Question"]
        assert "https://lab-stimuli.s3.us-east-1.amazonaws.com/studies/teststudy/" in question


def test_calls_in_flight_when_one_fails_are_still_recorded(tmp_path, turk_service):
    from botocore.exceptions import ClientError

    study = load_study(make_study(tmp_path / "s", tasks=8))
    real = turk_service.boto3_client()

    class RefusesSecond:
        calls = 0

        def __getattr__(self, name):
            return getattr(real, name)

        def create_hit_with_hit_type(self, **kwargs):
            RefusesSecond.calls += 1
            if RefusesSecond.calls == 2:
                raise ClientError({"Error": {"Code": "RequestError", "Message": "No."}},
                                  "CreateHITWithHITType")
            return real.create_hit_with_hit_type(**kwargs)

    with pytest.raises(CrowdkitError, match="No."):
        publish(study, on(study, RefusesSecond()), workers=4,
                store=LocalStore(turk_service.files_dir, turk_service.base_url))
    made = {h["HITId"] for h in account_hits(real)}
    with Ledger.open(study.db_path) as ledger:
        recorded = {r["hit_id"] for r in ledger.hits("local") if r["status"] == "created"}
    assert made == recorded and 3 <= len(made) < 8


def test_status_follows_workers_and_reviews(tmp_path, turk_service):
    from crowdkit.localturk.market import Market

    study = load_study(make_study(tmp_path / "s", tasks=2, assignments=3))
    run_publish(study, turk_service)
    client = turk_service.boto3_client()
    market = Market(turk_service.db)
    hit_id = account_hits(client)[0]["HITId"]
    assignments = []
    for worker in ("A1ONE", "A1TWO", "A1THREE"):
        market.set_profile(worker, "US", None, {turk.PERCENT_APPROVED: 99,
                                                turk.NUMBER_APPROVED: 5000})
        assignments.append(market.accept(worker, hit_id)["assignment_id"])
    for assignment_id in assignments[:2]:
        market.submit(assignment_id, [("data", "{}")])
    client.approve_assignment(AssignmentId=assignments[0])
    status = study_status(study, on(study, client))
    [hit] = [h for h in status.hits if h.hit_id == hit_id]
    assert (hit.available, hit.pending, hit.submitted, hit.approved, hit.rejected) == (
        0, 1, 1, 1, 0)
    assert hit.spent == D("0.60") and hit.committed == D("1.20")
    total = status.to_json()["total"]
    assert total["available"] == 3 and total["approved"] == 1
    assert total["spent"] == "0.60" and total["committed"] == "3.00"


def test_mturk_refusing_the_credentials_is_one_line(tmp_path, turk_service):
    from botocore.exceptions import ClientError

    study = load_study(make_study(tmp_path / "s"))

    class BadKeys:
        def __getattr__(self, name):
            def refuse(**kwargs):
                raise ClientError({"Error": {"Code": "UnrecognizedClientException",
                                             "Message": "The security token is invalid."}},
                                  name)
            return refuse

    with pytest.raises(CrowdkitError, match="UnrecognizedClientException.*credentials"):
        publish(study, on(study, BadKeys()),
                store=LocalStore(turk_service.files_dir, turk_service.base_url))


@pytest.mark.parametrize("max_per_hit, masters", [(9, False), (100, False), (100, True)])
def test_the_estimate_is_what_the_marketplace_holds(tmp_path, turk_service, max_per_hit,
                                                    masters):
    """The itemised cost agrees with localturk's own fee schedule, to the cent."""
    root = make_study(tmp_path / "s", assignments=12)
    toml = (root / "study.toml").read_text().replace('reward = "0.50"', 'reward = "0.33"')
    toml = toml.replace("assignments_per_task = 12",
                        f"assignments_per_task = 12\nmax_assignments_per_hit = {max_per_hit}")
    masters_line = f"\n[qualifications]\nmasters = {str(masters).lower()}\n"
    (root / "study.toml").write_text(toml + masters_line)
    study = load_study(root)
    client = turk_service.boto3_client()
    before = D(client.get_account_balance()["AvailableBalance"])
    result = run_publish(study, turk_service)
    after = D(client.get_account_balance()["AvailableBalance"])
    assert result.created == (8 if max_per_hit == 9 else 4)
    assert before - after == result.cost.total
