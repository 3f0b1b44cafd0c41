"""Rendering every HIT of a study: the questions, their download sizes, the dry run.

`crowdkit publish --dry-run` writes what each HIT would be into DIR/dry-run/ and sends
nothing anywhere: one .html page (loading its images from a copy beside it, so it opens
from disk), one .xml question as the platform would get it, and sizes.csv.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from crowdkit.platforms.base import Platform
from crowdkit.publish.plan import HitPlan
from crowdkit.store import MB, LocalStore, images_from_ledger, task_download_bytes
from crowdkit.study import Study
from crowdkit.tasks import DesignedTask
from crowdkit.templates import render_task_html


@dataclass
class Rendered:
    """Each task's question as the platform takes it, and its download size in bytes."""

    questions: dict[str, str]
    sizes: dict[str, int]


def render_tasks(study: Study, tasks: list[DesignedTask], image_rows: dict[str, sqlite3.Row],
                 image_base_url: str, platform: Platform) -> Rendered:
    image_bytes = {key: int(row["bytes"]) for key, row in image_rows.items()}
    questions, sizes = {}, {}
    for task in tasks:
        html = render_task_html(task.public, study.config, image_base_url,
                                study_root=study.root)
        question = platform.question(html, task.public.task_id)
        questions[task.public.task_id] = question
        sizes[task.public.task_id] = task_download_bytes(task.public, image_bytes,
                                                         len(question.encode("utf-8")))
    return Rendered(questions, sizes)


def write_dry_run(study: Study, tasks: list[DesignedTask], plans: list[HitPlan],
                  image_rows: dict[str, sqlite3.Row], rendered: Rendered) -> Path:
    """One .html and one .xml per HIT, and sizes.csv with each HIT's download in bytes."""
    out = study.root / "dry-run"
    out.mkdir(parents=True, exist_ok=True)
    for stale in list(out.glob("*.html")) + list(out.glob("*.xml")):
        stale.unlink()
    LocalStore(out / "files", "http://unused").upload(images_from_ledger(image_rows,
                                                                         study.root))
    sizes = ["task_id,part,max_assignments,download_bytes"]
    sizes += [f"{p.task_id},{p.part},{p.max_assignments},{rendered.sizes[p.task_id]}"
              for p in plans]
    (out / "sizes.csv").write_text("\n".join(sizes) + "\n", encoding="utf-8")
    by_id = {t.public.task_id: t for t in tasks}
    html_cache: dict[str, str] = {}
    for plan in plans:
        if plan.task_id not in html_cache:
            html_cache[plan.task_id] = render_task_html(
                by_id[plan.task_id].public, study.config, "files/", study_root=study.root)
        stem = f"{plan.task_id}-part{plan.part}"
        (out / f"{stem}.html").write_text(html_cache[plan.task_id], encoding="utf-8")
        (out / f"{stem}.xml").write_text(rendered.questions[plan.task_id], encoding="utf-8")
    return out


def format_size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB / 10 else f"{n / 1000:.0f} kB"
