"""The Machine Interpretability Score's classifier, batched across tasks (Zimmermann,
Klindt & Brendel, NeurIPS 2024), and the MIS per unit and condition.

One task: positive explanations E+ (the max references), negative explanations E- (the min
references), two queries. With s(q, E) the mean similarity of a query to a set of
explanations, the evidence that the top query is the max query is

    delta = [s(top, E+) - s(top, E-)] - [s(bottom, E+) - s(bottom, E-)]

and the classifier says p(top is the max query) = sigmoid(delta / alpha). The MIS of a unit
is the mean, over its tasks, of the probability of the right choice. A trial with max
references only drops the E- terms; one without references has no evidence (p = 0.5).

`alpha` is the paper's constant (0.16), read as the logistic's temperature: with similarities
such as DreamSim's (1 - distance, distances between 0 and 2), multiplying by 0.16 instead
would keep every probability within 0.5 +- 0.04, far from the MIS values the paper reports.
docs/mis.md says what is and is not the paper's here.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from crowdkit.observers.similarity import Similarity

ALPHA = 0.16


@dataclass(frozen=True)
class EmbeddedTask:
    """One task by the rows of its images in an embedding matrix."""

    top: int
    bottom: int
    max_refs: tuple[int, ...]
    min_refs: tuple[int, ...]


def p_top(similarity: Similarity, embeddings: Tensor, tasks: Sequence[EmbeddedTask],
          alpha: float = ALPHA, device: torch.device | None = None,
          batch_size: int = 4096) -> list[float]:
    """p(the top query is the max query) for each task, computed a batch of same-shaped
    tasks at a time on `device`."""
    device = device or embeddings.device
    matrix = embeddings.to(device)
    out = [0.5] * len(tasks)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, task in enumerate(tasks):
        groups[(len(task.max_refs), len(task.min_refs))].append(i)
    for (n_max, n_min), members in groups.items():
        if n_max == 0 and n_min == 0:
            continue  # no references: no evidence either way
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            deltas = _deltas(similarity, matrix, [tasks[i] for i in chunk], n_max, n_min)
            for i, p in zip(chunk, torch.sigmoid(deltas / alpha).tolist(), strict=True):
                out[i] = float(p)
    return out


def _deltas(similarity: Similarity, matrix: Tensor, tasks: list[EmbeddedTask], n_max: int,
            n_min: int) -> Tensor:
    device = matrix.device
    queries = matrix[torch.tensor([[t.top, t.bottom] for t in tasks], device=device)]

    def mean_similarity(refs: list[tuple[int, ...]]) -> Tensor:  # (T, 2)
        explanations = matrix[torch.tensor(refs, device=device)]  # (T, K, D)
        return similarity.similarity(queries[:, :, None, :],
                                     explanations[:, None, :, :]).mean(dim=-1)

    evidence = torch.zeros(len(tasks), 2, device=device)
    if n_max:
        evidence = evidence + mean_similarity([t.max_refs for t in tasks])
    if n_min:
        evidence = evidence - mean_similarity([t.min_refs for t in tasks])
    return evidence[:, 0] - evidence[:, 1]


def choice(p_top_query: float, trial_id: str) -> Literal["top", "bottom"]:
    """The observer's answer: the query it finds more likely the max one. Without any
    evidence (p exactly 0.5) a coin decided by the trial id, so reruns agree."""
    if p_top_query > 0.5:
        return "top"
    if p_top_query < 0.5:
        return "bottom"
    return "top" if int(hashlib.sha256(trial_id.encode()).hexdigest(), 16) % 2 else "bottom"


def confidence(p_right_choice: float) -> int:
    """1-3 as a person states it, from how far the chosen query's probability is from 0.5:
    3 from 0.8 on, 2 from 0.65, else 1."""
    return 3 if p_right_choice >= 0.8 else 2 if p_right_choice >= 0.65 else 1


@dataclass(frozen=True)
class MisScore:
    """The MIS of one unit in one condition: the mean probability of the right choice over
    its tasks with a 95 % CI (1.96 x SEM over tasks), and how often the choice was right."""

    unit: str
    condition: str
    tasks: int
    mis: float
    ci_low: float
    ci_high: float
    accuracy: float


def mis_score(unit: str, condition: str, p_correct: Sequence[float],
              correct: Sequence[bool]) -> MisScore:
    n = len(p_correct)
    mean = sum(p_correct) / n
    sd = math.sqrt(sum((p - mean) ** 2 for p in p_correct) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return MisScore(unit, condition, n, mean, max(0.0, mean - half), min(1.0, mean + half),
                    sum(correct) / n)
