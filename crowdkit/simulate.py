"""Simulated participants answering a study's local HITs over HTTP (`crowdkit simulate`).

Each simulated worker does what a person on localturk's worker site does, over its JSON
routes: list the HITs it can take, accept one of the study's, load the HIT's page from the
question URL, and post the form to the submit URL -- `assignmentId` and the `data` JSON in
exactly the shape the real page submits (crowdkit.payload.Payload). The task comes from the
JSON the page embeds (`<script id="task-data">`), never from the ledger.

To answer with a chosen accuracy a simulated worker needs to know the right answer, which the
page does not say for test trials. So the simulation has an *oracle*: it reads the answer
key from the ledger (read-only) and answers correctly with the configured probability per
condition. This is the one thing a person could not do; it is what lets tests check that
collect and analysis recover the accuracy that was put in.

Kinds of worker:
- careful: accuracy per condition, catch trials right with probability `catch_accuracy`,
  reaction times log-normal around 4 s, a minute or so on the instructions.
- careless (cycled): `same-side` always answers top; `fast` answers at random in 150-250 ms
  with a short session; `catch-fail` answers catch trials wrongly.
- fraudulent (cycled): tampered payloads that collect must mark invalid -- an injected
  `correct` field, an unknown trial id, a duplicated trial, a confidence of 7, a negative
  reaction time, markup in the feedback.
"""

from __future__ import annotations

import json
import math
import random
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from crowdkit.errors import CrowdkitError
from crowdkit.turk import NUMBER_APPROVED, PERCENT_APPROVED

CARELESS_KINDS = ("same-side", "fast", "catch-fail")
FRAUD_KINDS = ("extra-field", "unknown-trial", "duplicate-trial", "confidence-7",
               "negative-rt", "markup")
_TASK_DATA = re.compile(
    r'<script[^>]*id="task-data"[^>]*>(.*?)</script>', re.DOTALL | re.IGNORECASE)
USER_AGENT = "crowdkit-simulate/1 (simulated participant)"
# MTurk's system qualifications: a simulated worker is an experienced, well-rated one.
EXPERIENCED = {NUMBER_APPROVED: 5000, PERCENT_APPROVED: 99}


@dataclass
class SimulationSettings:
    """How the simulated crowd behaves."""

    participants: int = 10
    accuracy: dict[str, float] = field(
        default_factory=lambda: {"natural": 0.9, "synthetic": 0.8, "none": 0.5})
    catch_accuracy: float = 0.97
    careless: int = 0
    fraudulent: int = 0
    seed: int = 0
    rt_median_ms: float = 4000.0
    rt_sigma: float = 0.5

    def kinds(self) -> list[str]:
        """One kind per participant: careless and fraudulent ones spread through the crowd."""
        if self.careless + self.fraudulent > self.participants:
            raise CrowdkitError(
                f"--careless {self.careless} plus --fraudulent {self.fraudulent} is more than "
                f"--participants {self.participants}")
        kinds = ["careful"] * (self.participants - self.careless - self.fraudulent)
        kinds += [CARELESS_KINDS[i % len(CARELESS_KINDS)] for i in range(self.careless)]
        kinds += [FRAUD_KINDS[i % len(FRAUD_KINDS)] for i in range(self.fraudulent)]
        random.Random(f"kinds:{self.seed}").shuffle(kinds)
        return kinds


@dataclass
class SimulatedAssignment:
    worker_id: str
    kind: str
    hit_id: str
    assignment_id: str


@dataclass
class SimulationResult:
    submitted: list[SimulatedAssignment]
    no_hit: list[str]  # workers who found no HIT of the study to take

    def summary(self) -> str:
        kinds = Counter(a.kind for a in self.submitted)
        text = f"{len(self.submitted)} simulated participants submitted (" + ", ".join(
            f"{n} {k}" for k, n in sorted(kinds.items())) + ")"
        if self.no_hit:
            text += f"; {len(self.no_hit)} found no HIT left to take"
        return text


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


def page_task(page_html: str) -> dict[str, Any]:
    """The task JSON the worker's page embeds (crowdkit.templates.page_data).

    Read as the page's script reads it: the element's text as it stands (Jinja's tojson
    escapes what HTML would otherwise interpret), parsed as JSON.
    """
    match = _TASK_DATA.search(page_html)
    if match is None:
        raise CrowdkitError("the HIT's page has no task data (<script id=\"task-data\">)")
    return json.loads(match.group(1))


def _rt(rng: random.Random, settings: SimulationSettings) -> float:
    """A reaction time in ms: log-normal around the median, never under 250 ms."""
    return round(max(250.0, rng.lognormvariate(math.log(settings.rt_median_ms),
                                               settings.rt_sigma)), 1)


def _other(position: str) -> str:
    return "bottom" if position == "top" else "top"


def answer_task(task: dict[str, Any], truth: dict[str, str], kind: str,
                settings: SimulationSettings, rng: random.Random) -> dict[str, Any]:
    """The payload a participant of `kind` submits for the page's task.

    `truth` maps test trial ids to the max query's position (the oracle); practice trials
    carry their own answer in the page, as the real page's feedback does.
    """
    trials: list[dict[str, Any]] = []
    attempts = int(task.get("settings", {}).get("attempts", 3))
    practice = [t for t in task["trials"] if t["phase"] == "practice"]
    tests = [t for t in task["trials"] if t["phase"] != "practice"]
    rounds = 0
    for round_ in range(1, attempts + 1 if practice else 1):
        rounds = round_
        mistakes = 0
        for trial in practice:
            response = _respond(trial, trial.get("answer", "top"), kind, settings, rng,
                                is_catch=False)
            mistakes += response["response"] != trial.get("answer")
            trials.append({**response, "round": round_})
        if not mistakes:
            break
    for trial in tests:
        right = truth[trial["id"]]
        trials.append(_respond(trial, right, kind, settings, rng,
                               is_catch=truth.get("catch:" + trial["id"]) == "yes"))
    instructions_ms = (rng.uniform(2000, 4000) if kind == "fast"
                       else rng.uniform(20_000, 90_000))
    work_ms = sum(t["rt_ms"] for t in trials) + 600 * len(trials)
    payload: dict[str, Any] = {
        "schema_version": 1,
        "task_id": task["task"],
        "trials": trials,
        "practice_rounds": rounds,
        "timing": {"instructions_ms": round(instructions_ms),
                   "total_ms": round(instructions_ms + work_ms + rng.uniform(5000, 20000))},
        "questionnaire": {"cnn_experience": rng.choice([0, 0, 0, 1, 1, 2, 3]),
                          "fv_experience": rng.choice([0, 0, 0, 0, 1, 2, 3]),
                          "feedback": rng.choice(["", "", "Interesting task.",
                                                  "Some were hard to tell apart."])},
        "client": {"window_width": 1280, "window_height": 800, "user_agent": USER_AGENT},
    }
    if not task.get("settings", {}).get("questionnaire", True):
        payload["questionnaire"] = None
    return tamper(payload, kind, rng) if kind in FRAUD_KINDS else payload


def _respond(trial: dict[str, Any], right: str, kind: str, settings: SimulationSettings,
             rng: random.Random, *, is_catch: bool) -> dict[str, Any]:
    if kind == "same-side":
        response = "top"
    elif kind == "fast":
        response = rng.choice(["top", "bottom"])
    elif is_catch:
        p = 0.0 if kind == "catch-fail" else settings.catch_accuracy
        response = right if rng.random() < p else _other(right)
    else:
        p = settings.accuracy.get(trial.get("cond", ""), 0.5)
        response = right if rng.random() < p else _other(right)
    correct = response == right
    confidence = rng.choices([1, 2, 3], weights=[1, 3, 6] if correct else [4, 4, 2])[0]
    rt = round(rng.uniform(150, 250), 1) if kind == "fast" else _rt(rng, settings)
    return {"trial_id": trial["id"], "response": response, "confidence": confidence,
            "rt_ms": rt}


def tamper(payload: dict[str, Any], kind: str, rng: random.Random) -> dict[str, Any]:
    """What a worker editing the request would send; each kind breaks one rule."""
    trials = payload["trials"]
    victim = trials[rng.randrange(len(trials))]
    if kind == "extra-field":
        for trial in trials:
            trial["correct"] = True
    elif kind == "unknown-trial":
        trials.append({**victim, "trial_id": "f" * 12})
    elif kind == "duplicate-trial":
        trials.append(dict(trials[-1]))
    elif kind == "confidence-7":
        victim["confidence"] = 7
    elif kind == "negative-rt":
        victim["rt_ms"] = -120.0
    elif kind == "markup":
        payload["questionnaire"] = {**(payload["questionnaire"] or {"cnn_experience": 0,
                                                                    "fv_experience": 0}),
                                    "feedback": "<script>alert(1)</script>"}
    return payload


def oracle(ledger: Any) -> dict[str, str]:
    """Trial id -> the max query's position, plus "catch:<id>" markers, from the ledger."""
    truth: dict[str, str] = {}
    for task in ledger.tasks():
        for trial in task.key.trials:
            truth[trial.trial_id] = trial.max_position
            if trial.phase == "catch":
                truth["catch:" + trial.trial_id] = "yes"
    return truth


def worker_id(seed: int, index: int) -> str:
    return f"ASIM{seed % 10_000:04d}W{index:05d}"


def run_simulation(site: WorkerSite, study_hit_ids: set[str], truth: dict[str, str],
                   settings: SimulationSettings, on_worker: Any = None,
                   country: str | None = "US") -> SimulationResult:
    """Let `settings.participants` simulated workers each take one HIT of the study.

    Each worker first sets up its profile on the worker site: living in `country`, with a
    long record of approved work, so a study's usual requirements let it in.
    """
    rng = random.Random(f"simulate:{settings.seed}")
    submitted, no_hit = [], []
    for index, kind in enumerate(settings.kinds()):
        wid = worker_id(settings.seed, index)
        site.set_profile(wid, country, EXPERIENCED)
        offers = [h for h in site.hits(wid)
                  if h["HITId"] in study_hit_ids and h.get("CanAccept", True)]
        if not offers:
            no_hit.append(wid)
        else:
            hit = offers[rng.randrange(len(offers))]
            assignment = site.accept(wid, hit["HITId"])
            task = page_task(site.page(assignment["QuestionURL"]))
            payload = answer_task(task, truth, kind, settings, rng)
            site.submit(assignment["SubmitURL"],
                        [("assignmentId", assignment["AssignmentId"]),
                         ("data", json.dumps(payload, separators=(",", ":")))])
            submitted.append(SimulatedAssignment(wid, kind, hit["HITId"],
                                                 assignment["AssignmentId"]))
        if on_worker is not None:
            on_worker()
    return SimulationResult(submitted, no_hit)


def simulate(study: Any, settings: SimulationSettings, endpoint: str | None = None,
             ) -> SimulationResult:
    """`crowdkit simulate`: the study's local HITs, answered by simulated workers."""
    from rich.progress import Progress

    from crowdkit.ledger import Ledger

    with Ledger.open(study.db_path) as ledger:
        hit_ids = {h["hit_id"] for h in ledger.hits("local") if h["hit_id"]}
        truth = oracle(ledger)
    if not hit_ids:
        raise CrowdkitError(f"{study.db_path}: no local HITs; run `crowdkit publish "
                            f"{study.root} --target local` first")
    site = WorkerSite(endpoint or study.config.mturk.local_endpoint)
    locales = study.config.qualifications.locales
    country = locales[0].split("-")[0] if locales else "US"
    with Progress(transient=True) as progress:
        bar = progress.add_task("simulated participants", total=settings.participants)
        return run_simulation(site, hit_ids, truth, settings,
                              on_worker=lambda: progress.advance(bar), country=country)
