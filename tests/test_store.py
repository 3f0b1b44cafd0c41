"""Stimulus hosting: S3 (through moto, never real AWS) and the local files folder."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from crowdkit.design import image_key
from crowdkit.errors import CrowdkitError
from crowdkit.store import (
    CACHE_CONTROL,
    Image,
    LocalStore,
    S3Store,
    merge_public_read,
    over_budget,
    policy_grants_public_read,
    s3_base_url,
    study_prefix,
)

BUCKET = "crowdkit-test-bucket"


def make_images(folder: Path, n: int = 5) -> list[Image]:
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(n):
        data = f"image {i}".encode() * (i + 1)
        suffix = ".png" if i % 2 == 0 else ".jpg"
        path = folder / f"img{i}{suffix}"
        path.write_bytes(data)
        images.append(Image(image_key(data, suffix), path, len(data),
                            "image/png" if suffix == ".png" else "image/jpeg"))
    return images


@pytest.fixture
def s3(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def store_for(client, study: str = "study1") -> S3Store:
    return S3Store(BUCKET, prefix="crowdkit", study_name=study, client=client, workers=4)


def test_upload_puts_every_image_under_its_hash_key_with_type_and_cache_headers(s3, tmp_path):
    images = make_images(tmp_path)
    store = store_for(s3)
    result = store.upload(images)
    assert sorted(result.uploaded) == sorted(i.key for i in images)
    assert result.skipped == []
    for image in images:
        head = s3.head_object(Bucket=BUCKET, Key=f"crowdkit/study1/{image.key}")
        assert head["ContentType"] == image.content_type
        assert head["CacheControl"] == CACHE_CONTROL
        body = s3.get_object(Bucket=BUCKET, Key=f"crowdkit/study1/{image.key}")["Body"].read()
        assert body == image.path.read_bytes()
    assert store.base_url == f"https://{BUCKET}.s3.us-east-1.amazonaws.com/crowdkit/study1/"


def test_upload_skips_objects_already_there_and_replaces_damaged_ones(s3, tmp_path):
    images = make_images(tmp_path)
    store = store_for(s3)
    store.upload(images)
    damaged = images[1]
    s3.put_object(Bucket=BUCKET, Key=f"crowdkit/study1/{damaged.key}", Body=b"trunc")
    ticks = []
    result = store.upload(images, progress=ticks.append)
    assert result.uploaded == [damaged.key]
    assert sorted(result.skipped) == sorted(i.key for i in images if i is not damaged)
    assert sum(ticks) == len(images)
    body = s3.get_object(Bucket=BUCKET, Key=f"crowdkit/study1/{damaged.key}")["Body"].read()
    assert body == damaged.path.read_bytes()


def test_missing_bucket_is_one_clear_error(s3, tmp_path):
    store = S3Store("no-such-bucket-here", prefix="p", study_name="s", client=s3)
    with pytest.raises(CrowdkitError, match="no such bucket"):
        store.upload(make_images(tmp_path, 1))


def test_applied_policy_grants_public_get_on_the_study_prefix_only(s3):
    store = store_for(s3)
    with pytest.raises(CrowdkitError, match="--apply-bucket-policy"):
        store.check_public_read()
    store.apply_public_read_policy()
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:GetObject"  # no s3:ListBucket: no listing
    assert statement["Resource"] == [f"arn:aws:s3:::{BUCKET}/crowdkit/study1/*"]
    store.check_public_read()  # passes now
    # Another study in the same bucket is not covered by this one's grant.
    assert not policy_grants_public_read(policy, BUCKET, "crowdkit/study2/")
    assert not policy_grants_public_read(policy, BUCKET, "other/")


def test_applying_the_policy_keeps_other_statements_and_is_idempotent(s3):
    other = {"Sid": "Mine", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
             "Resource": f"arn:aws:s3:::{BUCKET}/keep/*"}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [other]}))
    store_for(s3, "a").apply_public_read_policy()
    store_for(s3, "a").apply_public_read_policy()
    store_for(s3, "b").apply_public_read_policy()
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert other in policy["Statement"]
    [ours] = [s for s in policy["Statement"] if s.get("Sid") == "CrowdkitPublicRead"]
    assert ours["Resource"] == [f"arn:aws:s3:::{BUCKET}/crowdkit/a/*",
                                f"arn:aws:s3:::{BUCKET}/crowdkit/b/*"]


def test_block_public_access_is_reported_clearly(s3):
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    store = store_for(s3)
    with pytest.raises(CrowdkitError, match="blocks public access"):
        store.check_public_read()
    with pytest.raises(CrowdkitError, match="BlockPublicPolicy"):
        store.apply_public_read_policy()


def test_a_broader_existing_grant_counts_as_public_read():
    policy = {"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"},
                            "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"}}
    assert policy_grants_public_read(policy, BUCKET, "crowdkit/s/")
    conditional = dict(policy["Statement"], Condition={"IpAddress": {"aws:SourceIp": "1.2.3.4"}})
    assert not policy_grants_public_read({"Statement": [conditional]}, BUCKET, "crowdkit/s/")
    merged = merge_public_read(policy, BUCKET, "crowdkit/s/")
    assert len(merged["Statement"]) == 2


def test_prefixes_and_urls():
    assert study_prefix("crowdkit", "s1") == "crowdkit/s1/"
    assert study_prefix("/a/b/", "s1") == "a/b/s1/"
    assert study_prefix("", "s1") == "s1/"
    assert s3_base_url("my.bucket", "eu-west-1", "p/") == (
        "https://s3.eu-west-1.amazonaws.com/my.bucket/p/")


def test_local_store_copies_once_and_serves_under_files(tmp_path):
    images = make_images(tmp_path / "src")
    store = LocalStore(tmp_path / "files", "http://127.0.0.1:9/")
    assert store.base_url == "http://127.0.0.1:9/files/"
    first = store.upload(images)
    assert len(first.uploaded) == len(images)
    for image in images:
        assert (tmp_path / "files" / image.key).read_bytes() == image.path.read_bytes()
    (tmp_path / "files" / images[0].key).write_bytes(b"x")
    second = store.upload(images)
    assert second.uploaded == [images[0].key]
    assert (tmp_path / "files" / images[0].key).read_bytes() == images[0].path.read_bytes()


def test_budget_flags_only_tasks_over_it():
    assert over_budget({"a": 14_000_000, "b": 16_000_000}, 15) == {"b": 16_000_000}


def test_http_local_store_puts_missing_files_and_skips_present_ones(tmp_path):
    """The client side of a separately running `crowdkit serve`: HEAD, then PUT if missing."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from crowdkit.store import HttpLocalStore

    stored: dict[str, tuple[bytes, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_HEAD(self):
            item = stored.get(self.path)
            self.send_response(200 if item else 404)
            self.send_header("Content-Length", str(len(item[0]) if item else 0))
            self.end_headers()

        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            stored[self.path] = (body, self.headers["Content-Type"])
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = HttpLocalStore(f"http://127.0.0.1:{server.server_address[1]}/")
        images = make_images(tmp_path / "src", 3)
        first = store.upload(images)
        assert sorted(first.uploaded) == sorted(i.key for i in images)
        for image in images:
            assert stored[f"/files/{image.key}"] == (image.path.read_bytes(), image.content_type)
        second = store.upload(images)
        assert second.uploaded == [] and len(second.skipped) == 3
    finally:
        server.shutdown()
        server.server_close()


def test_local_service_accepts_only_content_addressed_uploads(tmp_path):
    import hashlib
    import urllib.error
    import urllib.request

    from crowdkit.localturk import LocalTurk

    def put(url: str, body: bytes) -> int:
        request = urllib.request.Request(url, data=body, method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    body = b"an image"
    key = hashlib.sha256(body).hexdigest()[:32] + ".png"
    with LocalTurk(tmp_path / "t.db", port=0, files_dir=tmp_path / "files") as service:
        assert put(service.file_url(key), body) == 201
        assert (tmp_path / "files" / key).read_bytes() == body
        assert put(service.file_url(key), b"other bytes") == 400  # digest mismatch
        assert put(service.file_url("notahash.png"), body) == 400
        assert put(service.file_url("..%2Fescape.png"), body) == 400
        with urllib.request.urlopen(service.file_url(key), timeout=10) as response:
            assert response.read() == body


def test_access_denied_on_upload_is_one_clear_error(s3, tmp_path):
    from botocore.exceptions import ClientError

    class DeniesPut:
        def __getattr__(self, name):
            return getattr(s3, name)

        def put_object(self, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}},
                              "PutObject")

    store = S3Store(BUCKET, prefix="crowdkit", study_name="s", client=DeniesPut())
    with pytest.raises(CrowdkitError, match="access denied when trying to upload images"):
        store.upload(make_images(tmp_path, 2))
