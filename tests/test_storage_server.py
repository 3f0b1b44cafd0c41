"""[storage] with an S3-compatible endpoint and a public base URL, against moto's standalone
server over real HTTP (not moto's in-process mock): publish uploads there, the HIT pages
load the images from the public base URL, and a browser shows them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.localturk import LocalTurk
from crowdkit.store import S3Store, check_served, image_base_url, open_store
from crowdkit.study import load_study
from tests.browser import CHROMIUM
from tests.factories import make_study
from tests.moto_server import CREDENTIALS, cdn, moto_server, s3_client
from tests.test_store import make_images

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "stimuli"


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        s3_client(url).create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def storage_study(root: Path, storage: str, mturk: str = "") -> Path:
    make_study(root)
    with (root / "study.toml").open("a") as fh:
        fh.write(f"\n[storage]\n{storage}\n")
        if mturk:
            fh.write(f"\n[mturk]\n{mturk}\n")
    return root


def test_the_store_uploads_to_the_endpoint_and_browsers_can_read_it(endpoint, aws_env,
                                                                    tmp_path):
    store = S3Store(BUCKET, prefix="crowdkit", study_name="s1", endpoint_url=endpoint)
    images = make_images(tmp_path / "img")
    first = store.upload(images)
    assert sorted(first.uploaded) == sorted(i.key for i in images)
    assert store.base_url == f"{endpoint}/{BUCKET}/crowdkit/s1/"
    assert store.describe() == f"s3://{BUCKET}/crowdkit/s1/ at {endpoint}"
    with pytest.raises(CrowdkitError, match="browsers cannot load the images: .* HTTP 403"):
        check_served(store.base_url, images[0])  # an anonymous GET, as a browser's
    store.apply_public_read_policy()  # moto's server honours bucket policies
    check_served(store.base_url, images[0])
    again = store.upload(images)
    assert again.uploaded == [] and len(again.skipped) == len(images)
    listed = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix="crowdkit/s1/")
    assert {o["Key"] for o in listed["Contents"]} == {f"crowdkit/s1/{i.key}" for i in images}


def test_an_unreadable_public_url_is_one_clear_error(endpoint, aws_env, tmp_path):
    images = make_images(tmp_path / "img", 1)
    with pytest.raises(CrowdkitError, match="browsers cannot load the images: .* HTTP 404"):
        check_served(f"{endpoint}/{BUCKET}/nothing-here/", images[0])


def test_backend_and_urls_follow_storage(tmp_path):
    root = storage_study(tmp_path / "s", f'backend = "s3"\nbucket = "{BUCKET}"\n'
                         'endpoint_url = "http://127.0.0.1:9000/"\n'
                         'public_base_url = "https://cdn.example.org/"')
    study = load_study(root)
    for target in ("local", "sandbox", "live"):
        assert image_base_url(study.config, study.name, target) == (
            "https://cdn.example.org/crowdkit/teststudy/")
    store = open_store(study, "local")
    assert isinstance(store, S3Store) and store.endpoint_url == "http://127.0.0.1:9000"

    plain = load_study(storage_study(tmp_path / "p", f'bucket = "{BUCKET}"'))
    assert image_base_url(plain.config, plain.name, "local") == "http://127.0.0.1:8765/files/"
    assert image_base_url(plain.config, plain.name, "sandbox") == (
        f"https://{BUCKET}.s3.us-east-1.amazonaws.com/crowdkit/teststudy/")

    local = load_study(storage_study(tmp_path / "l", 'backend = "local"'))
    assert image_base_url(local.config, local.name, "sandbox") == (
        "http://127.0.0.1:8765/files/")
    with pytest.raises(ConfigError, match='backend: "local" hosts the images on this machine'):
        open_store(local, "live")


def test_a_malformed_storage_url_names_the_key(tmp_path):
    root = storage_study(tmp_path / "s", 'endpoint_url = "minio:9000"')
    with pytest.raises(ConfigError, match=r"\[storage\] endpoint_url: .*http:// or https://"):
        load_study(root)


@pytest.mark.slow
def test_publish_with_s3_storage_at_motos_server(endpoint, tmp_path):
    """The whole path a researcher rehearses offline: `crowdkit publish --target local`
    with [storage] backend = "s3" at moto's server and a public base URL (a caching front
    on another port, as a CDN in front of the bucket: the URL the pages use is told apart
    from the endpoint)."""
    with LocalTurk(tmp_path / "t.db", port=0) as turk, cdn(f"{endpoint}/{BUCKET}") as public:
        root = storage_study(
            tmp_path / "s",
            f'backend = "s3"\nbucket = "{BUCKET}"\nendpoint_url = "{endpoint}"\n'
            f'public_base_url = "{public}"',
            mturk=f'local_endpoint = "{turk.endpoint_url}"')
        env = {**CREDENTIALS, "PATH": "/usr/bin:/bin"}
        command = [sys.executable, "-m", "crowdkit", "publish", str(root), "--target", "local"]
        refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                                 timeout=300, env=env)
        assert refused.returncode == 1  # no public read yet: nothing is posted
        assert refused.stderr.strip().startswith(
            f"error: browsers cannot load the images: {public}/crowdkit/teststudy/")
        assert "HTTP 403" in refused.stderr and turk.boto3_client().list_hits()["HITs"] == []
        done = subprocess.run([*command, "--apply-bucket-policy"], capture_output=True,
                              text=True, cwd=ROOT, timeout=300, env=env)
        assert done.returncode == 0, done.stderr
        assert f"(s3://{BUCKET}/crowdkit/teststudy/ at {endpoint})" in done.stdout
        with Ledger.open(root / "study.db") as ledger:
            keys = set(ledger.images())
        listed = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix="crowdkit/teststudy/")
        assert {o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]} == keys

        client = turk.boto3_client()
        hits = client.list_hits()["HITs"]
        assert len(hits) == 4
        for hit in hits:  # every page loads its images from the public base URL only
            urls = set(re.findall(r'https?://[^"\\]+?/crowdkit/teststudy/', hit["Question"]))
            assert urls == {f"{public}/crowdkit/teststudy/"}
        hit = hits[0]
        if CHROMIUM.exists():
            loaded = images_a_browser_loads(turk, hit["HITId"])
            assert loaded and all(url.startswith(public) for url in loaded)


def images_a_browser_loads(turk: LocalTurk, hit_id: str) -> list[str]:
    """Accept the HIT in headless Chromium and wait until its page has loaded every image;
    return the image URLs the browser fetched with status 200."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.hit_page_helpers import launch_chromium

    loaded: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.on("response", lambda r: loaded.append(r.url)
                    if r.status == 200 and "/crowdkit/teststudy/" in r.url else None)
            page.goto(turk.worker_url)
            page.fill("input[name=workerId]", "A1STORAGE")
            page.click("button[type=submit]")
            page.click(f"form[action='/worker/hits/{hit_id}/accept'] button")
            frame = page.frame_locator("iframe#question")  # the accepted HIT's page
            status = frame.locator("#load-status")
            status.filter(has_text="All images are loaded.").wait_for(timeout=120_000)
        finally:
            browser.close()
    return loaded


def test_the_local_service_behind_a_public_url_is_checked_as_browsers_see_it(tmp_path):
    """[storage] backend = "local" with a public_base_url (the local service behind a
    tunnel, for sandbox or live): an address that serves nothing stops publish before any
    HIT exists, as it does for S3 at a CDN."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{free.getsockname()[1]}/files"
    with LocalTurk(tmp_path / "t.db", port=0) as turk:
        root = storage_study(tmp_path / "s", f'backend = "local"\npublic_base_url = "{nowhere}"',
                             mturk=f'local_endpoint = "{turk.endpoint_url}"')
        done = subprocess.run([sys.executable, "-m", "crowdkit", "publish", str(root),
                               "--target", "local"], capture_output=True, text=True, cwd=ROOT,
                              timeout=300)
        assert done.returncode == 1, done.stdout
        assert done.stderr.startswith(f"error: browsers cannot load the images: {nowhere}/")
        assert turk.boto3_client().list_hits()["HITs"] == []
