"""`crowdkit mis`: the machine observer answers the study's designed trials, and the MIS.

Order of work: read the designed 2-AFC trials (crowdkit.observers.tasks), decode every image
they show once, embed the images the cache does not have yet (in batches on the device, or
as Ray tasks), classify every trial at once (crowdkit.observers.mis), then write

- `data/machine_trials.parquet` (and `.csv`): one row per trial in the tidy trials format,
  built by the same code as human rows (`crowdkit.collect.dataset.tidy_rows`), with
  `participant_id` naming the observer (`machine:dreamsim`), its choice as `response` and
  `correct`, and its probability of the right choice as `p_correct`;
- `data/mis.csv`: the MIS per unit and condition with its CI over tasks, from the main
  trials (`tasks = "designed"`), and with `--all-units N` from N tasks per unit drawn the
  paper's way (`tasks = "drawn"`).

Nothing here prints; `MisResult.summary_lines()` says what happened.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowdkit.answers import ParsedAnswer
from crowdkit.collect.dataset import Dataset, spreadsheet_safe
from crowdkit.files import write_atomically
from crowdkit.ledger import Ledger
from crowdkit.manifest import load_manifest
from crowdkit.observers import MACHINE_TRIALS
from crowdkit.payload import Payload, Timing
from crowdkit.progress import Progress, silent
from crowdkit.quality import AssignmentRecord
from crowdkit.study import Study
from crowdkit.trials.twoafc import TrialResponse

if TYPE_CHECKING:
    import pandas as pd

    from crowdkit.observers.mis import EmbeddedTask, MisScore
    from crowdkit.observers.similarity import Similarity, SimilaritySpec
    from crowdkit.observers.tasks import DrawnTask, ObservedTrial

MIS_CSV = "mis.csv"
TARGET = "machine"
MIS_COLUMNS = ["tasks", "unit", "condition", "n_tasks", "mis", "ci_low", "ci_high",
               "accuracy", "observer", "alpha"]


@dataclass
class MisResult:
    """What `run_mis` did, for the summary the command prints."""

    observer: str
    device: str
    trials: pd.DataFrame
    scores: pd.DataFrame
    files: list[Path]
    embedded: int = 0  # images embedded in this run (the rest came from the cache)
    images: int = 0
    notes: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        t = self.trials
        lines = [f"machine observer {self.observer} on {self.device}: {len(t)} trials of "
                 f"{t['task_id'].nunique()} tasks; {self.images} images, {self.embedded} "
                 "embedded now, the rest from the cache"]
        for phase in ("main", "catch"):
            rows = t[t["phase"] == phase]
            for condition, group in rows.groupby("condition", sort=False):
                lines.append(f"  {phase} {condition}: right on {group['correct'].mean():.0%} "
                             f"of {len(group)} trials, mean p_correct "
                             f"{group['p_correct'].mean():.3f}")
        lines += [f"wrote {path}" for path in self.files]
        return lines


def similarity_spec(study: Study) -> SimilaritySpec:
    from crowdkit.observers.similarity import SimilaritySpec

    mis = study.config.mis
    seed = mis.seed if mis.seed is not None else study.config.study.seed
    return SimilaritySpec(kind=mis.similarity, model=mis.feature_model,
                          weights=mis.feature_weights, seed=seed,
                          layers=tuple(mis.feature_layers),
                          cache_dir=str(Path.home() / ".cache" / "crowdkit" / "dreamsim"),
                          base_dir=str(study.root))


def run_mis(study: Study, *, all_units: int = 0, device: str | None = None,
            ray: str | None = None, progress: Progress = silent) -> MisResult:
    """Score the study's designed trials (and with `all_units`, N drawn tasks per unit of
    the manifest) and write data/machine_trials.parquet and data/mis.csv."""
    import pandas as pd

    from crowdkit.observers.mis import mis_score
    from crowdkit.observers.tasks import designed_trials, drawn_tasks
    from stimgen.models import resolve_device

    torch_device = resolve_device(device or study.config.mis.device)
    spec = similarity_spec(study)
    with Ledger.open(study.db_path) as ledger:
        designed, trials = designed_trials(study, ledger)
    drawn: list[DrawnTask] = []
    if all_units:
        drawn = drawn_tasks(study, load_manifest(study.manifest_path), all_units, spec.seed)
    observer = Observer(spec, torch_device, study.root / ".cache" / "mis",
                        study.config.mis.batch_size, ray or study.config.compute.ray or None,
                        requested=device or study.config.mis.device)
    files = [*[t.top for t in trials], *[t.bottom for t in trials],
             *[p for t in trials for p in (*t.max_refs, *t.min_refs)],
             *[p for d in drawn for p in (d.top, d.bottom, *d.max_refs, *d.min_refs)]]
    observer.prepare(files, progress)
    alpha = study.config.mis.alpha
    p_tops = observer.p_top([_embedded(observer, t) for t in trials], alpha)
    frame = _trial_rows(study, observer.name, designed, trials, p_tops)
    scores = [*_designed_scores(frame, mis_score),
              *_drawn_scores(observer, drawn, alpha, mis_score)]
    table = pd.DataFrame([
        {"tasks": kind, "unit": s.unit, "condition": s.condition, "n_tasks": s.tasks,
         "mis": s.mis, "ci_low": s.ci_low, "ci_high": s.ci_high, "accuracy": s.accuracy,
         "observer": observer.name, "alpha": alpha} for kind, s in scores],
        columns=MIS_COLUMNS)
    notes = [observer.note] if observer.note else []
    about = {"observer": observer.name, "similarity": spec.kind, "alpha": alpha,
             "fingerprint": observer.similarity.fingerprint, "note": observer.note}
    written = _write(study, frame, table, about)
    return MisResult(observer.name, str(torch_device), frame, table, written,
                     observer.embedded, observer.images, notes)


class Observer:
    """A similarity function with its embedding cache: images in, probabilities out."""

    def __init__(self, spec: SimilaritySpec, device: Any, cache_dir: Path,
                 batch_size: int | None, ray: str | None, requested: str = "auto") -> None:
        from crowdkit.observers.similarity import EmbeddingCache, load_similarity

        self.spec, self.device, self.ray = spec, device, ray
        self.similarity: Similarity = load_similarity(spec, device)
        self.name = f"machine:{self.similarity.name}"
        self.note = self.similarity.note
        self.cache = EmbeddingCache(cache_dir / f"{self.similarity.fingerprint}.pt")
        self.configured_batch = batch_size
        self.batch_size = batch_size or _batch_for(device.type)
        self.requested = requested  # the device asked for: Ray workers resolve it for theirs
        self.row: dict[Path, int] = {}  # image file -> its row in `matrix`
        self.embedded = 0
        self.images = 0

    def prepare(self, files: Sequence[Path], progress: Progress) -> None:
        """Decode each file once and embed every image the cache does not hold."""
        from crowdkit.observers.similarity import decode

        unique = list(dict.fromkeys(files))
        hashes: dict[Path, str] = {}
        arrays: dict[str, Any] = {}
        with progress("reading images", total=len(unique)) as advance:
            for path in unique:
                digest, array = decode(_read(path))
                hashes[path] = digest
                if digest not in self.cache.vectors:
                    arrays.setdefault(digest, array)
                advance(1)
        todo = list(arrays)
        with progress(f"embedding {len(todo)} images", total=len(todo)) as advance:
            self._embed(todo, [arrays[h] for h in todo], advance)
        self.cache.save()
        order = list(dict.fromkeys(hashes.values()))
        self.matrix = self.cache.matrix(order)
        index = {h: i for i, h in enumerate(order)}
        self.row = {path: index[h] for path, h in hashes.items()}
        self.embedded, self.images = len(todo), len(order)

    def _embed(self, hashes: list[str], arrays: list[Any], advance: Any) -> None:
        from crowdkit.observers.similarity import embed_arrays

        if not self.ray:
            for start in range(0, len(arrays), self.batch_size):
                part = arrays[start:start + self.batch_size]
                self.cache.add(hashes[start:start + self.batch_size],
                               embed_arrays(self.similarity, part, self.device, len(part)))
                advance(len(part))
            return
        from stimgen.distributed import connect, map_tasks, worker_device

        on = worker_device(self.requested, connect(self.ray))
        batch = self.configured_batch or _batch_for(on)
        size = batch * 4
        batches = [arrays[i:i + size] for i in range(0, len(arrays), size)]

        def done(i: int, vectors: Any) -> None:
            self.cache.add(hashes[i * size:i * size + len(batches[i])], vectors)
            advance(len(batches[i]))

        map_tasks(self.ray, embed_batch, batches, self.spec, batch, on, device=on,
                  on_done=done)

    def p_top(self, tasks: list[EmbeddedTask], alpha: float) -> list[float]:
        from crowdkit.observers.mis import p_top

        return p_top(self.similarity, self.matrix, tasks, alpha, device=self.device)


def _batch_for(device_type: str) -> int:
    return 64 if device_type == "cuda" else 16


def embed_batch(arrays: list[Any], spec: SimilaritySpec, batch_size: int, device_name: str
                ) -> Any:
    """One batch of images embedded in a Ray worker on the device the run asked for (its
    GPU where it was given one); the similarity function is built once per worker process."""
    import torch

    from crowdkit.observers.similarity import embed_arrays, load_similarity

    device = torch.device(device_name)
    key = (spec, str(device))
    if key not in _WORKER_SIMILARITY:
        _WORKER_SIMILARITY[key] = load_similarity(spec, device)
    return embed_arrays(_WORKER_SIMILARITY[key], arrays, device, batch_size)


_WORKER_SIMILARITY: dict[tuple[Any, str], Any] = {}


def _read(path: Path) -> bytes:
    from crowdkit.errors import CrowdkitError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise CrowdkitError(f"{path}: cannot read an image a designed task shows "
                            f"({exc.strerror}); run `crowdkit design` again") from None


def _embedded(observer: Observer, trial: ObservedTrial | DrawnTask) -> EmbeddedTask:
    from crowdkit.observers.mis import EmbeddedTask

    row = observer.row
    return EmbeddedTask(row[trial.top], row[trial.bottom],
                        tuple(row[p] for p in trial.max_refs),
                        tuple(row[p] for p in trial.min_refs))


def _trial_rows(study: Study, observer: str, designed: Sequence[Any],
                trials: Sequence[ObservedTrial], p_tops: Sequence[float]) -> pd.DataFrame:
    """The observer's answers as tidy rows, through the code that makes human rows."""
    from crowdkit.observers.mis import choice, confidence

    answers: dict[str, list[TrialResponse]] = defaultdict(list)
    p_correct: dict[tuple[str, int], float] = {}
    for trial, p in zip(trials, p_tops, strict=True):
        response = choice(p, trial.trial_id)
        chosen = p if response == "top" else 1 - p
        answers[trial.task_id].append(TrialResponse(
            trial_id=trial.trial_id, response=response, confidence=confidence(chosen),
            rt_ms=0.0))
        right = getattr(trial.key, "max_position", "top")
        p_correct[(trial.task_id, trial.key.trial_index)] = p if right == "top" else 1 - p
    records = []
    for task in designed:
        task_id = task.key.task_id
        if not answers[task_id]:
            continue
        payload = Payload(task_id=task_id, trials=list(answers[task_id]),
                          timing=Timing(instructions_ms=0, total_ms=0))
        records.append(AssignmentRecord(
            assignment_id=f"{observer}:{task_id}", hit_id="", task_id=task_id, target=TARGET,
            worker_id=observer, participant_id=observer, status="Machine", accept_time=None,
            submit_time=None, auto_approval_time=None,
            parsed=ParsedAnswer(payload=payload, problem=None), key=task.key,
            expert_level="machine"))
    frame = Dataset(study=study.name, records=records).trials_frame()
    frame["p_correct"] = [p_correct[(t, int(i))] for t, i in
                          zip(frame["task_id"], frame["trial_index"], strict=True)]
    return frame


def _designed_scores(frame: pd.DataFrame, score: Any) -> list[tuple[str, MisScore]]:
    main = frame[frame["phase"] == "main"]
    return [("designed", score(str(unit), str(condition), list(group["p_correct"]),
                               list(group["correct"])))
            for (unit, condition), group in main.groupby(["unit", "condition"], sort=True)]


def _drawn_scores(observer: Observer, drawn: Sequence[DrawnTask], alpha: float,
                  score: Any) -> list[tuple[str, MisScore]]:
    if not drawn:
        return []
    p_tops = observer.p_top([_embedded(observer, d) for d in drawn], alpha)
    by_unit: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task, p in zip(drawn, p_tops, strict=True):
        by_unit[(task.unit, task.condition)].append(p if task.max_is_top else 1 - p)
    return [("drawn", score(unit, condition, ps, [p > 0.5 for p in ps]))
            for (unit, condition), ps in sorted(by_unit.items())]


def _write(study: Study, frame: pd.DataFrame, table: pd.DataFrame,
           about: dict[str, Any]) -> list[Path]:
    """The trials (Parquet and CSV), the MIS table, and what the observer was
    (machine_trials.json, which analyze reads for its note)."""
    import json

    data = study.data_dir
    data.mkdir(parents=True, exist_ok=True)
    trials_path, csv_path, mis_path = (data / MACHINE_TRIALS, data / "machine_trials.csv",
                                       data / MIS_CSV)
    write_atomically(data / "machine_trials.json", json.dumps(about, indent=2) + "\n")
    write_atomically(trials_path, frame.to_parquet(index=False))
    write_atomically(csv_path, spreadsheet_safe(frame).to_csv(index=False,
                                                              lineterminator="\n"))
    write_atomically(mis_path, table.to_csv(index=False, lineterminator="\n"))
    return [trials_path, csv_path, mis_path]
