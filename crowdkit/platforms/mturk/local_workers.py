"""The local twin's worker site, over HTTP: what a simulated participant clicks through.

localturk (crowdkit.localturk) serves JSON routes beside its worker pages; this client uses
them exactly as a person's browser uses the pages: set up a profile, list HITs, accept one,
load its page from the question URL and post the form to the submit URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from crowdkit.errors import CrowdkitError

USER_AGENT = "crowdkit-simulate/1 (simulated participant)"


class WorkerSite:
    """localturk's worker JSON routes, over HTTP (urllib only)."""

    def __init__(self, base_url: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, url: str, body: bytes | None = None,
                 content_type: str | None = None, accept: str = "application/json") -> bytes:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise CrowdkitError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise CrowdkitError(f"cannot reach the local service at {self.base_url} "
                                f"({exc.reason}); start it with `crowdkit serve`") from None

    def set_profile(self, worker_id: str, country: str | None,
                    qualifications: dict[str, int]) -> None:
        body = json.dumps({"workerId": worker_id, "country": country,
                           "qualifications": qualifications}).encode()
        self._request("POST", f"{self.base_url}/worker/api/profile", body, "application/json")

    def hits(self, worker_id: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"workerId": worker_id})
        body = self._request("GET", f"{self.base_url}/worker/api/hits?{query}")
        return json.loads(body)["HITs"]

    def accept(self, worker_id: str, hit_id: str) -> dict[str, Any]:
        body = json.dumps({"workerId": worker_id, "hitId": hit_id}).encode()
        return json.loads(self._request("POST", f"{self.base_url}/worker/api/accept", body,
                                        "application/json"))

    def page(self, question_url: str) -> str:
        return self._request("GET", question_url, accept="text/html").decode("utf-8")

    def submit(self, submit_url: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        body = urllib.parse.urlencode(fields).encode("ascii")
        return json.loads(self._request("POST", submit_url, body,
                                        "application/x-www-form-urlencoded"))
