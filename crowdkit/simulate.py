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
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crowdkit import sources
from crowdkit.errors import CrowdkitError
from crowdkit.ledger import Ledger
from crowdkit.observers import MACHINE_TRIALS
from crowdkit.platforms.mturk.local_workers import USER_AGENT, WorkerSite
from crowdkit.platforms.mturk.quals import NUMBER_APPROVED, PERCENT_APPROVED
from crowdkit.progress import Progress, silent
from crowdkit.study import Study
from crowdkit.tasks import DesignedTask
from crowdkit.trials import registry
from crowdkit.trials.base import DEFAULT_TYPE, SimulatedParticipant
from crowdkit.units import plural

CARELESS_KINDS = ("same-side", "fast", "catch-fail")
FRAUD_KINDS = ("extra-field", "unknown-trial", "duplicate-trial", "confidence-7",
               "negative-rt", "markup")
_TASK_DATA = re.compile(
    r'<script[^>]*id="task-data"[^>]*>(.*?)</script>', re.DOTALL | re.IGNORECASE)
# MTurk's system qualifications: a simulated worker is an experienced, well-rated one.
EXPERIENCED = {NUMBER_APPROVED: 5000, PERCENT_APPROVED: 99}


@dataclass
class SimulationSettings:
    """How the simulated crowd behaves."""

    participants: int = 10
    # Per condition; a condition not listed gets its reference source's default.
    accuracy: dict[str, float] = field(default_factory=dict)
    catch_accuracy: float = 0.97
    careless: int = 0
    fraudulent: int = 0
    seed: int = 0
    rt_median_ms: float = 4000.0
    rt_sigma: float = 0.5
    # --observer mis: trial id -> the machine observer's p of the right choice, guessed on
    # a share `lapse` of trials; unset trials keep `accuracy`
    trial_p: dict[str, float] = field(default_factory=dict)
    lapse: float = 0.04

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

    def participant(self, kind: str) -> SimulatedParticipant:
        """A participant of `kind`, with the source registry's accuracy where none is set."""
        accuracy = {name: sources.get(name).simulated_accuracy for name in sources.names()}
        accuracy.update(self.accuracy)
        return SimulatedParticipant(kind=kind, accuracy=accuracy,
                                    catch_accuracy=self.catch_accuracy,
                                    rt_median_ms=self.rt_median_ms, rt_sigma=self.rt_sigma,
                                    trial_p=self.trial_p, lapse=self.lapse)


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
        text = plural(len(self.submitted), "simulated participant") + " submitted (" + ", ".join(
            f"{n} {k}" for k, n in sorted(kinds.items())) + ")"
        if self.no_hit:
            text += f"; {len(self.no_hit)} found no HIT left to take"
        return text


def page_task(page_html: str) -> dict[str, Any]:
    """The task JSON the worker's page embeds (crowdkit.templates.page_data).

    Read as the page's script reads it: the element's text as it stands (Jinja's tojson
    escapes what HTML would otherwise interpret), parsed as JSON.
    """
    match = _TASK_DATA.search(page_html)
    if match is None:
        raise CrowdkitError("the HIT's page has no task data (<script id=\"task-data\">)")
    return json.loads(match.group(1))


def answer_task(task: dict[str, Any], truth: dict[str, object], kind: str,
                settings: SimulationSettings, rng: random.Random) -> dict[str, Any]:
    """The payload a participant of `kind` submits for the page's task.

    `truth` maps test trial ids to the max query's position (the oracle); practice trials
    carry their own answer in the page, as the real page's feedback does.
    """
    trials: list[dict[str, Any]] = []
    participant = settings.participant(kind)
    attempts = int(task.get("settings", {}).get("attempts", 3))
    practice = [t for t in task["trials"] if t["phase"] == "practice"]
    tests = [t for t in task["trials"] if t["phase"] != "practice"]
    rounds = 0
    for round_ in range(1, attempts + 1 if practice else 1):
        rounds = round_
        mistakes = 0
        for trial in practice:
            trial_type = registry.get(trial.get("type", DEFAULT_TYPE))
            response = trial_type.simulate(trial, trial.get("answer"), False, participant, rng)
            mistakes += not trial_type.practice_right(trial, response)
            trials.append({**response, "round": round_})
        if not mistakes:
            break
    for trial in tests:
        trial_type = registry.get(trial.get("type", DEFAULT_TYPE))
        is_catch = truth.get("catch:" + trial["id"]) == "yes"
        trials.append(trial_type.simulate(trial, truth.get(trial["id"]), is_catch,
                                          participant, rng))
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


def oracle(tasks: Sequence[DesignedTask]) -> dict[str, object]:
    """Trial id -> the right answer (its type's `truth`: for 2-AFC, the max query's
    position), plus "catch:<id>" markers, from the ledger's tasks."""
    truth: dict[str, object] = {}
    for task in tasks:
        for trial in task.key.trials:
            truth[trial.trial_id] = registry.get(trial.type).truth(trial)
            if trial.phase == "catch":
                truth["catch:" + trial.trial_id] = "yes"
    return truth


def machine_probabilities(study: Study, tasks: Sequence[DesignedTask]) -> dict[str, float]:
    """Trial id -> the machine observer's probability of the right choice, from
    data/machine_trials.parquet (`crowdkit mis`), for `simulate --observer mis`."""
    import pandas as pd

    path = study.data_dir / MACHINE_TRIALS
    if not path.is_file():
        raise CrowdkitError(f"{path}: no machine observer's answers; run `crowdkit mis "
                            f"{study.root}` first")
    rows = pd.read_parquet(path, columns=["task_id", "trial_index", "p_correct"])
    p = {(str(t), int(i)): float(v) for t, i, v in
         zip(rows["task_id"], rows["trial_index"], rows["p_correct"], strict=True)}
    return {trial.trial_id: p[(task.key.task_id, trial.trial_index)]
            for task in tasks for trial in task.key.trials
            if (task.key.task_id, trial.trial_index) in p}


def worker_id(seed: int, index: int) -> str:
    return f"ASIM{seed % 10_000:04d}W{index:05d}"


def run_simulation(site: WorkerSite, study_hit_ids: set[str], truth: dict[str, object],
                   settings: SimulationSettings,
                   on_worker: Callable[[], None] | None = None,
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


def simulate(study: Study, settings: SimulationSettings, endpoint: str | None = None,
             progress: Progress = silent, observer: str | None = None) -> SimulationResult:
    """`crowdkit simulate`: the study's local HITs, answered by simulated workers.

    `observer="mis"`: careful participants answer each trial with the machine observer's
    probability of the right choice (`crowdkit mis` first), plus `settings.lapse` guesses,
    so the data have the structure of real data: hard units hard, easy ones easy."""
    if observer not in (None, "mis"):
        raise CrowdkitError(f"--observer {observer!r}: the one machine observer is mis")
    with Ledger.open(study.db_path) as ledger:
        hit_ids = {h["hit_id"] for h in ledger.hits("local") if h["hit_id"]}
        tasks = ledger.tasks()  # each task's JSON validated once, for both uses
    truth = oracle(tasks)
    if observer == "mis":
        settings.trial_p = machine_probabilities(study, tasks)
    if not hit_ids:
        raise CrowdkitError(f"{study.db_path}: no local HITs; run `crowdkit publish "
                            f"{study.root} --target local` first")
    site = WorkerSite(endpoint or study.config.mturk.local_endpoint)
    locales = study.config.qualifications.locales
    country = locales[0].split("-")[0] if locales else "US"
    with progress("simulated participants", total=settings.participants) as advance:
        return run_simulation(site, hit_ids, truth, settings, on_worker=lambda: advance(1),
                              country=country)
