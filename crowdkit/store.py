"""Stimulus hosting: S3Store (boto3) and LocalStore (served by the local service).

Both stores host each image under its content-hash key ("<hex digest>.<ext>", from the
design), so an object never changes once written: uploads skip what is already there, and
browsers may cache images for a year. The worker's page builds image URLs as
`store.base_url + key`; nothing in a URL says what an image is.

On S3 the study's images live under `<[storage] prefix>/<study name>/`. Workers' browsers
read them without credentials, which needs a bucket policy granting public `s3:GetObject`
on that prefix only (no listing); `public_read_policy` builds it and `apply_public_read_policy`
merges it into the bucket's policy. Block Public Access on the bucket defeats such a policy;
`check_public_read` says so in one line.

`[storage]` chooses the hosting (`open_store`, `image_base_url`): `backend` "s3" or "local"
for any target (by default local for the local target, S3 otherwise); `endpoint_url` an
S3-compatible API (MinIO, Ceph, Cloudflare R2, moto's server) instead of AWS's; and
`public_base_url` where browsers load the images instead (a CDN or custom domain in front
of the bucket). Such services differ in their policy APIs, so with either of the last two
the check that browsers can read the images is a plain anonymous HTTP request for one
uploaded image at the URL the pages use (`check_served`).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol, TypeVar

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.files import file_digest
from crowdkit.study import Study, StudyConfig
from crowdkit.tasks import PublicTask
from crowdkit.trials import registry

CACHE_CONTROL = "public, max-age=31536000, immutable"
POLICY_SID = "CrowdkitPublicRead"
UPLOAD_WORKERS = 8
T = TypeVar("T")
MB = 1_000_000


@dataclass(frozen=True)
class Image:
    """One file to host: its key, where it is on disk, its size and type."""

    key: str
    path: Path
    bytes: int
    content_type: str


@dataclass
class UploadResult:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0


class Store(Protocol):
    """What publishing needs from a host of stimuli.

    `checked_over_http`: publish checks that browsers can load the images by fetching one
    from `base_url` after the upload (a CDN, a tunnel, an S3-compatible server), because
    nothing else can tell it.
    """

    base_url: str

    @property
    def checked_over_http(self) -> bool: ...

    def upload(self, images: list[Image], progress: Callable[[int], None] | None = None,
               ) -> UploadResult: ...

    def describe(self) -> str: ...


def images_from_ledger(rows: dict[str, sqlite3.Row], study_root: Path) -> list[Image]:
    """The ledger's images table as files to host; a missing file is a clear error."""
    images = []
    for key, row in sorted(rows.items()):
        path = Path(row["path"])
        path = path if path.is_absolute() else study_root / path
        if not path.is_file():
            raise CrowdkitError(
                f"{path}: image {key} of the design is missing; re-run `crowdkit stimuli` "
                "or restore the file"
            )
        images.append(Image(key, path, int(row["bytes"]), row["content_type"]))
    return images


# ----------------------------------------------------------------------------------------
# S3
# ----------------------------------------------------------------------------------------


def study_prefix(prefix: str, study_name: str) -> str:
    """The S3 key prefix of one study's images, ending in "/"."""
    parts = [p for p in prefix.strip("/").split("/") if p] + [study_name]
    return "/".join(parts) + "/"


def s3_base_url(bucket: str, region: str, prefix: str) -> str:
    """The public HTTPS URL of a prefix. Virtual-hosted style, except for bucket names
    with dots (their certificates would not match), which get path style."""
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com/{bucket}/{prefix}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{prefix}"


def public_read_statement(bucket: str, prefix: str) -> dict:
    return {
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
    }


def public_read_policy(bucket: str, prefix: str) -> dict:
    """A bucket policy that lets anyone GET objects under `prefix`, and nothing else:
    no listing, no other prefix, no writes."""
    return {"Version": "2012-10-17", "Statement": [public_read_statement(bucket, prefix)]}


def merge_public_read(policy: dict | None, bucket: str, prefix: str) -> dict:
    """Add public read on `prefix` to an existing policy, keeping every other statement."""
    policy = json.loads(json.dumps(policy)) if policy else {"Version": "2012-10-17"}
    statements = policy.setdefault("Statement", [])
    if isinstance(statements, dict):
        statements = policy["Statement"] = [statements]
    resource = f"arn:aws:s3:::{bucket}/{prefix}*"
    for st in statements:
        if st.get("Sid") == POLICY_SID:
            resources = st.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else list(resources)
            if resource not in resources:
                resources.append(resource)
            st["Resource"] = resources
            return policy
    statements.append(public_read_statement(bucket, prefix))
    return policy


def policy_grants_public_read(policy: dict | None, bucket: str, key_prefix: str) -> bool:
    """True when some Allow statement lets everyone GET objects under `key_prefix`."""
    if not policy:
        return False
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    probe = f"arn:aws:s3:::{bucket}/{key_prefix}x.png"
    for st in statements:
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        principal = st.get("Principal")
        if principal != "*" and principal != {"AWS": "*"}:
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("s3:GetObject", "s3:*", "*") for a in actions):
            continue
        resources = st.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatchcase(probe, r) for r in resources):
            return True
    return False


def s3_public_url(bucket: str, region: str, prefix: str, *, endpoint_url: str | None = None,
                  public_base_url: str | None = None) -> str:
    """Where browsers load a prefix's objects: the public base URL (a CDN, the bucket's
    root), else the S3-compatible endpoint in path style, else AWS's own URL."""
    if public_base_url:
        return f"{public_base_url.rstrip('/')}/{prefix}"
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}/{prefix}"
    return s3_base_url(bucket, region, prefix)


class S3Store:
    """A study's images in an S3 bucket under content-hash keys, readable by anyone.

    `endpoint_url` talks to an S3-compatible service instead of AWS (path-style addressing,
    which MinIO and moto's server need); `public_base_url` is where browsers load the
    images when a CDN or custom domain serves the bucket.
    """

    def __init__(self, bucket: str, *, prefix: str, study_name: str, region: str = "us-east-1",
                 client: Any = None,  # a boto3 S3 client (made here when None)
                 profile: str | None = None,
                 endpoint_url: str | None = None,
                 public_base_url: str | None = None,
                 workers: int = UPLOAD_WORKERS) -> None:
        if not bucket:
            raise CrowdkitError("[storage] bucket: set the S3 bucket that hosts the images")
        self.bucket = bucket
        self.region = region
        self.prefix = study_prefix(prefix, study_name)
        self.endpoint_url = endpoint_url
        self.public_base_url = public_base_url
        self.workers = workers
        if client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(profile_name=profile, region_name=region)
            client = session.client("s3", region_name=region, endpoint_url=endpoint_url,
                                    config=Config(
                                        retries={"mode": "standard", "max_attempts": 10},
                                        max_pool_connections=max(10, workers * 2),
                                        s3={"addressing_style": "path"} if endpoint_url
                                        else None))
        self.client = client
        self.base_url = s3_public_url(bucket, region, self.prefix, endpoint_url=endpoint_url,
                                      public_base_url=public_base_url)

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    @property
    def checked_over_http(self) -> bool:
        """True when browsers' access is checked by fetching an image (`check_served`)
        rather than by reading AWS's bucket policy (`check_public_read`)."""
        return bool(self.endpoint_url or self.public_base_url)

    def object_key(self, key: str) -> str:
        return self.prefix + key

    def existing(self) -> dict[str, str]:
        """Object key -> ETag (quotes stripped) of everything under the study prefix."""
        found = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj.get("ETag", "").strip('"')
        return found

    def upload(self, images: list[Image], progress: Callable[[int], None] | None = None,
               ) -> UploadResult:
        """Upload what is missing, in parallel; skip objects whose MD5 ETag matches the file.

        A same-key object with a different ETag (a truncated upload, say) is replaced.
        """
        existing = self._call("list the study prefix", self.existing)
        result = UploadResult()
        todo = []
        for image in images:
            etag = existing.get(self.object_key(image.key))
            if etag is not None and etag == file_digest(image.path, "md5"):
                result.skipped.append(image.key)
                if progress:
                    progress(1)
            else:
                todo.append(image)

        def put(image: Image) -> Image:
            with image.path.open("rb") as body:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.object_key(image.key), Body=body,
                    ContentType=image.content_type, CacheControl=CACHE_CONTROL,
                )
            return image

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [pool.submit(put, image) for image in todo]
            for future in as_completed(futures):
                image = self._call("upload images", future.result)
                result.uploaded.append(image.key)
                result.uploaded_bytes += image.bytes
                if progress:
                    progress(1)
        return result

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except CrowdkitError:
            raise
        except Exception as exc:
            raise self._user_error(what, exc) from exc

    def _user_error(self, what: str, exc: Exception) -> Exception:
        """A one-line CrowdkitError for the S3 errors a researcher can fix, else `exc`."""
        code = _s3_code(exc)
        if code == "NoSuchBucket":
            return CrowdkitError(f"s3://{self.bucket}: no such bucket; create it first "
                                 "(docs/publishing.md)")
        if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
                    "SignatureDoesNotMatch", "ExpiredToken"):
            return CrowdkitError(f"s3://{self.bucket}: access denied when trying to {what} "
                                 f"({code}); check the credentials and the IAM policy "
                                 "(docs/publishing.md)")
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed",
                    "IllegalLocationConstraintException"):
            return CrowdkitError(f"s3://{self.bucket} is not in region {self.region}; set "
                                 "[storage] region to the bucket's region")
        return exc

    # -- public read ----------------------------------------------------------------------

    def bucket_policy(self) -> dict | None:
        try:
            text = self.client.get_bucket_policy(Bucket=self.bucket)["Policy"]
        except Exception as exc:
            if _s3_code(exc) == "NoSuchBucketPolicy":
                return None
            raise self._user_error("read the bucket policy", exc) from exc
        return json.loads(text)

    def public_access_blocks(self) -> list[str]:
        """The bucket's Block Public Access settings that stop a public bucket policy."""
        try:
            conf = self.client.get_public_access_block(Bucket=self.bucket)[
                "PublicAccessBlockConfiguration"]
        except Exception as exc:
            if _s3_code(exc) in ("NoSuchPublicAccessBlockConfiguration", "NotImplemented",
                                 "XNotImplemented"):  # S3-compatible services without it
                return []
            raise self._user_error("read Block Public Access", exc) from exc
        return [name for name in ("BlockPublicPolicy", "RestrictPublicBuckets") if conf.get(name)]

    def check_public_read(self) -> None:
        """Raise a one-line CrowdkitError unless browsers can read the study's images."""
        blocks = self.public_access_blocks()
        if blocks:
            raise CrowdkitError(
                f"s3://{self.bucket} blocks public access ({', '.join(blocks)} is on), so "
                "workers' browsers cannot load the images; turn these two settings off for "
                "this bucket (docs/publishing.md, 'Block Public Access') and publish again"
            )
        if not policy_grants_public_read(self.bucket_policy(), self.bucket, self.prefix):
            raise CrowdkitError(
                f"s3://{self.bucket}: the bucket policy does not let browsers read "
                f"{self.prefix}*; run publish with --apply-bucket-policy to add public read "
                "on this prefix only (or add it yourself: docs/publishing.md)"
            )

    def apply_public_read_policy(self) -> dict:
        """Merge public read on the study prefix into the bucket policy; return the policy."""
        blocks = self.public_access_blocks()
        if "BlockPublicPolicy" in blocks:
            raise CrowdkitError(
                f"s3://{self.bucket} has BlockPublicPolicy on, so S3 refuses a public-read "
                "policy; turn off BlockPublicPolicy and RestrictPublicBuckets for this bucket "
                "(docs/publishing.md, 'Block Public Access') and try again"
            )
        policy = merge_public_read(self.bucket_policy(), self.bucket, self.prefix)
        self._call("set the bucket policy", lambda: self.client.put_bucket_policy(
            Bucket=self.bucket, Policy=json.dumps(policy)))
        return policy


def check_served(base_url: str, image: Image, timeout: float = 30) -> None:
    """Raise a one-line CrowdkitError unless an anonymous GET of `image` at `base_url`
    answers 200 with its bytes, as a worker's browser would ask for it."""
    import urllib.error
    import urllib.request

    url = base_url + image.key
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise CrowdkitError(
            f"browsers cannot load the images: {url} answers HTTP {exc.code}; allow public "
            "read on the study's prefix, or check [storage] public_base_url "
            "(docs/publishing.md)") from None
    except OSError as exc:
        raise CrowdkitError(f"browsers cannot load the images: {url}: {exc}; check [storage] "
                            "public_base_url and endpoint_url (docs/publishing.md)") from None
    if len(body) != image.bytes:
        raise CrowdkitError(f"{url} serves {len(body)} bytes, not the {image.bytes} uploaded; "
                            "does [storage] public_base_url point at this bucket's root?")


def _s3_code(exc: BaseException) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))


# ----------------------------------------------------------------------------------------
# Local
# ----------------------------------------------------------------------------------------


class LocalStore:
    """The study's images in the local service's files folder, served at `<base>/files/`."""

    checked_over_http = False  # the service that takes the HITs serves them itself

    def __init__(self, files_dir: Path | str, base_url: str) -> None:
        self.files_dir = Path(files_dir)
        self.base_url = base_url.rstrip("/") + "/files/"

    def describe(self) -> str:
        return str(self.files_dir)

    def upload(self, images: list[Image], progress: Callable[[int], None] | None = None,
               ) -> UploadResult:
        """Copy what is missing; a same-named file with other bytes is replaced.

        The key is the source's content hash, so only the hosted copy is read to check it.
        """
        self.files_dir.mkdir(parents=True, exist_ok=True)
        result = UploadResult()
        for image in images:
            dest = self.files_dir / image.key
            same = dest.is_file() and dest.stat().st_size == image.bytes and (
                file_digest(dest, "sha256").startswith(Path(image.key).stem))
            if same:
                result.skipped.append(image.key)
            else:
                tmp = dest.with_name(dest.name + ".part")
                shutil.copyfile(image.path, tmp)
                tmp.replace(dest)
                result.uploaded.append(image.key)
                result.uploaded_bytes += image.bytes
            if progress:
                progress(1)
        return result


# ----------------------------------------------------------------------------------------
# The local service's files, over HTTP
# ----------------------------------------------------------------------------------------


class HttpLocalStore:
    """Hosts images in a separately running `crowdkit serve`, through its /files/ endpoint.

    HEAD /files/<key> answers 200 with the Content-Length when the file is there; PUT
    /files/<key> stores the body. Content-hash keys make both safe to repeat. Pages load
    the images from /files/ too, or from `public_base_url` (the service behind a tunnel).
    """

    def __init__(self, local_endpoint: str, public_base_url: str | None = None) -> None:
        self.endpoint = local_endpoint.rstrip("/")
        self.upload_url = self.endpoint + "/files/"
        self.base_url = (public_base_url.rstrip("/") + "/" if public_base_url
                         else self.upload_url)
        # behind a tunnel or proxy, only a fetch shows that browsers reach the images
        self.checked_over_http = public_base_url is not None

    def describe(self) -> str:
        return self.upload_url

    def upload(self, images: list[Image], progress: Callable[[int], None] | None = None,
               ) -> UploadResult:
        import urllib.error
        import urllib.request

        result = UploadResult()
        for image in images:
            url = self.upload_url + image.key
            try:
                with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"),
                                            timeout=30) as response:
                    present = int(response.headers.get("Content-Length", -1)) == image.bytes
            except urllib.error.HTTPError:
                present = False
            except OSError as exc:
                raise CrowdkitError(f"cannot reach the local service at {self.endpoint}: "
                                    f"{exc}") from exc
            if present:
                result.skipped.append(image.key)
            else:
                request = urllib.request.Request(
                    url, data=image.path.read_bytes(), method="PUT",
                    headers={"Content-Type": image.content_type})
                try:
                    urllib.request.urlopen(request, timeout=60).close()
                except urllib.error.HTTPError as exc:
                    raise CrowdkitError(
                        f"the local service at {self.endpoint} refused to store {image.key} "
                        f"(HTTP {exc.code}); is it a crowdkit serve that accepts uploads?"
                    ) from exc
                result.uploaded.append(image.key)
                result.uploaded_bytes += image.bytes
            if progress:
                progress(1)
        return result


# ----------------------------------------------------------------------------------------
# The study's choice: [storage]
# ----------------------------------------------------------------------------------------


def image_base_url(config: StudyConfig, study_name: str, target: str) -> str:
    """Where the worker's page loads images from for `target`, without touching the network."""
    storage = config.storage
    local_files = config.mturk.local_endpoint.rstrip("/") + "/files/"
    if storage.backend_for(target) == "local":
        return storage.public_base_url + "/" if storage.public_base_url else local_files
    if not storage.bucket:  # a dry run before a bucket is chosen
        return local_files
    return s3_public_url(storage.bucket, storage.region,
                         study_prefix(storage.prefix, study_name),
                         endpoint_url=storage.endpoint_url,
                         public_base_url=storage.public_base_url)


def open_store(study: Study, target: str) -> Store:
    """The store [storage] chooses for `target`: S3 (or an S3-compatible service) or the
    local service's files. Nothing is contacted until the first upload."""
    storage, where = study.config.storage, f"{study.toml_path}: [storage]"
    if storage.backend_for(target) == "local":
        if target == "live" and not storage.public_base_url:
            raise ConfigError(
                f"{where} backend: \"local\" hosts the images on this machine, which live "
                "workers cannot reach; use backend = \"s3\", or set public_base_url to where "
                "the local service is reachable from the internet")
        return HttpLocalStore(study.config.mturk.local_endpoint, storage.public_base_url)
    if not storage.bucket:
        raise ConfigError(f"{where} bucket: publishing to {target} with backend \"s3\" needs "
                          "a bucket for the images (see docs/publishing.md)")
    return S3Store(storage.bucket, prefix=storage.prefix, study_name=study.name,
                   region=storage.region, profile=study.config.mturk.profile,
                   endpoint_url=storage.endpoint_url, public_base_url=storage.public_base_url)


# ----------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------


def task_image_keys(task: PublicTask) -> set[str]:
    """Every image key a public task shows, whatever its trials' types."""
    keys: set[str] = set()
    for trial in task.trials:
        keys.update(registry.get(trial.type).image_keys(trial))
    return keys


def task_download_bytes(task: PublicTask, image_bytes: dict[str, int],
                        question_bytes: int = 0) -> int:
    """What one HIT downloads: each distinct image once, plus the page itself."""
    return question_bytes + sum(image_bytes[k] for k in task_image_keys(task))


def over_budget(sizes: dict[str, int], budget_mb: float) -> dict[str, int]:
    """The tasks whose download is over the budget (in decimal megabytes)."""
    limit = budget_mb * MB
    return {task_id: n for task_id, n in sizes.items() if n > limit}
