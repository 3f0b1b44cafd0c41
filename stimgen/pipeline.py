"""`render_stimuli(job)`: a [stimuli] section (a `StimuliJob`) -> stimuli/ with images and
manifest. crowdkit calls it through `crowdkit.stimuli.render_study_stimuli(study)`.

Order of work: load the model, resolve the units, scan the dataset once for every unit that
needs natural exemplars, write the exemplar crops, render the feature visualizations in
chunks, draw the contact sheets, then write manifest.json last (atomically).

Every finished piece is recorded in `stimuli/.cache/` under a key of everything that
determines it (model weights hash, dataset fingerprint, settings, seeds). A re-run with the
same inputs reuses it after checking the files' sha256; an interrupted scan continues from
its checkpoint; an interrupted render loses at most the chunk in progress.

Nothing here prints: each stretch of work is reported through the caller's `Progress`
(crowdkit.progress), and what happened is in the returned `StimuliResult`.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.files import file_digest, write_atomically
from crowdkit.manifest import (
    DatasetInfo,
    ExemplarBatch,
    ImageRef,
    Manifest,
    ModelInfo,
    NaturalExemplars,
    SyntheticImages,
    Unit,
    write_manifest,
)
from crowdkit.progress import Progress, silent
from stimgen.config import StimuliConfig
from stimgen.contact import write_contact_sheet
from stimgen.datasets import (
    DECODE_ERRORS,
    GET_A_DATASET,
    PREPROCESSING,
    ImageFolder,
    load_crop,
)
from stimgen.distributed import RayTarget
from stimgen.estimate import plan_rendering
from stimgen.exemplars import ScanResult, assign_batches, default_batch_size, scan_dataset
from stimgen.featurevis import (
    DIRECTIONS,
    RenderedGroup,
    RenderSettings,
    RenderTarget,
    render_targets,
)
from stimgen.hashing import derive_seed, fingerprint, sha256_bytes
from stimgen.job import StimuliInterrupted, StimuliJob, StimuliPlan, StimuliResult
from stimgen.models import LoadedModel, load_model, probe_layers, resolve_device
from stimgen.units import UnitRef, select_units

CACHE_DIR = ".cache"
GENERATOR = "crowdkit stimuli"
BATCH_ASSIGNMENT = {
    "ranked": "top (bottom) K sorted most extreme first, ties by dataset index; rank bins of "
              "`batches` images; batch b takes sorted rank j*batches+b of bin j; lists in "
              "ascending activation",
    "shuffled": "top (bottom) K sorted most extreme first, ties by dataset index; rank bins of "
                "`batches` images, each shuffled (seeded by the unit and side); batch b takes "
                "the b-th image of shuffled bin j; lists in ascending activation",
}
OBJECTIVE = (
    "mean of the unit's channel (negated for min) minus diversity_weight x lucid's diversity "
    "term over the unit's images, on the layer diversity_layer names; lucent FFT "
    "parameterisation with decorrelated colour"
)


@dataclass
class _Tally:
    """What a rendering did, counted as it goes (the StimuliResult's numbers)."""

    scanned_images: int = 0
    natural_written: int = 0
    natural_reused: int = 0
    synthetic_rendered: int = 0
    synthetic_reused: int = 0
    contact_sheets: list[Path] = field(default_factory=list)
    skipped_examples: list[str] = field(default_factory=list)
    scan_progress: int = 0  # images the scan has read in this run


def _kept(tally: _Tally, n_images: int, natural: _NaturalWork,
          synthetic: _SyntheticWork | None) -> list[str]:
    """What an interrupted rendering leaves for the next run, in words."""
    kept = []
    if natural.scan_units and 0 < tally.scan_progress < n_images:
        kept.append(f"the scan's checkpoint (about {tally.scan_progress} of {n_images} "
                    "images read; it is saved when interrupted)")
    done_natural = tally.natural_reused + tally.natural_written
    kept.append(f"natural exemplars of {done_natural} units")
    if synthetic is not None:
        total = tally.synthetic_reused + len(synthetic.todo)
        done = tally.synthetic_reused + tally.synthetic_rendered
        kept.append(f"feature visualizations of {done} of {total} unit-directions "
                    "(a chunk in progress is lost)")
    return kept


class RecordStore:
    """Finished pieces of work, one JSON file each, valid only under the same key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, kind: str, name: str, key: str) -> dict[str, Any] | None:
        path = self.root / kind / f"{name}.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return record if record.get("key") == key else None

    def put(self, kind: str, name: str, key: str, data: dict[str, Any]) -> None:
        write_atomically(self.root / kind / f"{name}.json", json.dumps({"key": key, **data}))


def render_stimuli(
    job: StimuliJob,
    *,
    device: str | None = None,
    progress: Progress = silent,
    on_plan: Callable[[StimuliPlan], None] | None = None,
    estimate: bool = True,
) -> StimuliResult:
    """Render `job.config` into `job.stimuli_dir` and write `job.manifest_path` last.

    `device` overrides the [stimuli] device; `progress` is told of each stretch of work
    (scanning, saving exemplars, rendering, contact sheets). `on_plan` is told what will be
    done before any of it starts (with a time estimate from a short measurement unless
    `estimate` is False). Ctrl-C raises `StimuliInterrupted`, which says what was kept for
    a re-run to continue from. Nothing is printed.
    """
    started = time.monotonic()
    cfg = job.config
    seed = job.seed
    out = job.stimuli_dir
    _refuse_foreign_manifest(job.manifest_path)
    folder = _dataset(cfg, job.root)
    torch_device = resolve_device(device or cfg.device)
    model = load_model(cfg.model, cfg.weights, seed=seed, device=torch_device,
                       base_dir=job.root)
    units = select_units(cfg, model, seed)
    out.mkdir(parents=True, exist_ok=True)
    store = RecordStore(out / CACHE_DIR)
    tally = _Tally()
    natural_work = _natural_todo(cfg, model, units, folder, out, store, tally)
    synthetic_work = (_synthetic_todo(cfg, model, units, seed, out, store, tally)
                      if cfg.synthetic.enabled else None)
    ray = RayTarget.for_job(job, device or cfg.device, natural_work, synthetic_work)
    if on_plan is not None:
        on_plan(plan_rendering(
            cfg, model, units, folder, requested_device=device or cfg.device,
            scan_units=natural_work.scan_units, natural_todo=len(natural_work.todo),
            targets=synthetic_work.todo if synthetic_work else [],
            settings=synthetic_work.settings if synthetic_work else None,
            transform_seed=synthetic_work.transform_seed if synthetic_work else 0,
            synthetic_reused=tally.synthetic_reused, estimate=estimate))
    try:
        natural, dataset_info = _natural_exemplars(cfg, model, natural_work, folder, out,
                                                   store, progress, tally, ray)
        synthetic: dict[str, SyntheticImages] = {}
        if synthetic_work is not None:
            synthetic = _feature_visualizations(cfg, model, units, seed, synthetic_work, out,
                                                store, progress, tally, ray)
    except KeyboardInterrupt:
        raise StimuliInterrupted(_kept(tally, len(folder), natural_work, synthetic_work)
                                 ) from None
    manifest_units = [
        Unit(id=u.id, layer=u.layer, channel=u.channel, label=u.label,
             selection=u.selection, natural=natural[u.id], synthetic=synthetic.get(u.id))
        for u in units
    ]
    sheets = {}
    if cfg.contact_sheets:
        with progress("contact sheets", total=len(manifest_units)) as advance:
            for ref, unit in zip(units, manifest_units, strict=True):
                path = write_contact_sheet(unit, out, out / "contact_sheets" / f"{ref.slug}.png")
                sheets[unit.id] = path.relative_to(out).as_posix()
                tally.contact_sheets.append(path)
                advance(1)
    manifest = Manifest(
        generator=f"{GENERATOR} {_version()}",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        model=ModelInfo(name=model.name, family=model.family, weights=model.weights,
                        weights_sha256=model.weights_sha256,
                        random_weights=model.random_weights),
        dataset=dataset_info,
        units=manifest_units,
        parameters={
            "seed": seed,
            "device": str(torch_device),
            "batches": cfg.batches,
            "images_per_batch": cfg.images_per_batch,
            "images_per_side": cfg.images_per_side,
            "statistic": "spatial mean of the unit's feature map (pre-ReLU where the model "
                         "has one)",
            "input": model.preprocessing,
            "batch_assignment": BATCH_ASSIGNMENT[cfg.bin_order],
            "bin_order": cfg.bin_order,
            "image_format": cfg.image_format,
            "contact_sheets": sheets,
        },
    )
    write_manifest(manifest, job.manifest_path)
    return StimuliResult(
        manifest=manifest, manifest_path=job.manifest_path, device=str(torch_device),
        seconds=time.monotonic() - started, scanned_images=tally.scanned_images,
        natural_written=tally.natural_written, natural_reused=tally.natural_reused,
        synthetic_rendered=tally.synthetic_rendered, synthetic_reused=tally.synthetic_reused,
        contact_sheets=tally.contact_sheets, skipped_examples=tally.skipped_examples)


def _refuse_foreign_manifest(path: Path) -> None:
    """Never overwrite stimuli a researcher brought by hand."""
    if not path.is_file():
        return
    try:
        generator = json.loads(path.read_text(encoding="utf-8")).get("generator", "")
    except (OSError, json.JSONDecodeError, AttributeError):
        generator = ""
    if not str(generator).startswith(GENERATOR):
        raise CrowdkitError(
            f"{path} was not written by `crowdkit stimuli`; move it (and its images) away "
            "before rendering stimuli here"
        )


def _dataset(cfg: StimuliConfig, root: Path) -> ImageFolder:
    if cfg.dataset is None:
        raise ConfigError(f"[stimuli] dataset: required; {GET_A_DATASET}")
    path = Path(cfg.dataset).expanduser()
    folder = ImageFolder.scan(path if path.is_absolute() else root / path)
    need = 2 * cfg.images_per_side
    if len(folder) < need:
        raise ConfigError(
            f"[stimuli] dataset: {folder.root} has {len(folder)} images; batches x "
            f"images_per_batch = {cfg.images_per_side} per side needs at least {need}"
        )
    return folder


# -- natural exemplars -------------------------------------------------------------------


@dataclass
class _NaturalWork:
    """The natural exemplars already there (`natural`) and the units still to do (`todo`),
    with the scans that can be reused, found before anything is computed."""

    data_key: str
    natural_key: str
    natural: dict[str, NaturalExemplars]
    todo: list[UnitRef]
    scans: dict[str, dict[str, Any]]
    dataset_record: dict[str, Any] | None

    @property
    def scan_units(self) -> list[UnitRef]:
        """The units the dataset must be scanned for (none when every scan is reused)."""
        missing = [u for u in self.todo if u.id not in self.scans]
        return missing or (self.todo if self.todo and self.dataset_record is None else [])


def _natural_todo(cfg: StimuliConfig, model: LoadedModel, units: list[UnitRef],
                  folder: ImageFolder, out: Path, store: RecordStore, tally: _Tally,
                  ) -> _NaturalWork:
    k = cfg.images_per_side
    data_key = fingerprint({"model": model.fingerprint(), "dataset": folder.fingerprint()})
    natural_key = fingerprint({"data": data_key, "k": k, "batches": cfg.batches,
                               "per_batch": cfg.images_per_batch, **_encoding(cfg),
                               **({"bins": "shuffled"} if cfg.bin_order == "shuffled" else {})})
    natural: dict[str, NaturalExemplars] = {}
    todo: list[UnitRef] = []
    for unit in units:
        record = store.get("natural", unit.slug, natural_key)
        if record and _files_intact(out, record["natural"]):
            natural[unit.id] = NaturalExemplars.model_validate(record["natural"])
            tally.natural_reused += 1
        else:
            todo.append(unit)
    found = {u.id: store.get("scan", f"{u.slug}", _scan_key(data_key, u, k)) for u in todo}
    scans = {unit_id: record for unit_id, record in found.items() if record is not None}
    return _NaturalWork(data_key, natural_key, natural, todo, scans,
                        store.get("scan", "dataset", data_key))


def _natural_exemplars(
    cfg: StimuliConfig, model: LoadedModel, work: _NaturalWork, folder: ImageFolder,
    out: Path, store: RecordStore, progress: Progress, tally: _Tally,
    ray: RayTarget | None = None,
) -> tuple[dict[str, NaturalExemplars], DatasetInfo]:
    k = cfg.images_per_side
    data_key, natural_key, natural = work.data_key, work.natural_key, work.natural
    todo, scans, dataset_record = work.todo, work.scans, work.dataset_record
    to_scan = work.scan_units
    if to_scan:
        scan = _scan(cfg, model, to_scan, folder, out, data_key, progress, tally, ray)
        tally.scanned_images = len(folder)
        dataset_record = {"n_skipped": scan.n_skipped, "skipped": scan.skipped}
        store.put("scan", "dataset", data_key, dataset_record)
        for unit in to_scan:
            scans[unit.id] = {"top": scan.top[unit.id], "bottom": scan.bottom[unit.id]}
            store.put("scan", unit.slug, _scan_key(data_key, unit, k), scans[unit.id])
    if dataset_record is None:  # everything reused, but the dataset record went missing
        dataset_record = {"n_skipped": 0, "skipped": []}
    tally.skipped_examples = list(dataset_record.get("skipped", []))

    if todo:
        natural.update(_write_exemplars(cfg, todo, scans, folder, out, progress))
        for unit in todo:
            store.put("natural", unit.slug, natural_key,
                      {"natural": natural[unit.id].model_dump(mode="json", exclude_none=True)})
        tally.natural_written = len(todo)
    info = DatasetInfo(root=str(cfg.dataset), n_images=len(folder),
                       n_skipped=int(dataset_record["n_skipped"]), preprocessing=PREPROCESSING)
    return natural, info


def _scan_key(data_key: str, unit: UnitRef, k: int) -> str:
    return fingerprint({"data": data_key, "layer": unit.layer, "channel": unit.channel, "k": k})


def _scan(cfg: StimuliConfig, model: LoadedModel, units: list[UnitRef], folder: ImageFolder,
          out: Path, data_key: str, progress: Progress, tally: _Tally,
          ray: RayTarget | None = None) -> ScanResult:
    units_key = fingerprint({"data": data_key, "k": cfg.images_per_side,
                             "units": [(u.layer, u.channel) for u in units]})
    with progress(f"scanning {len(units)} units", total=len(folder)) as advance:

        def scanned(n: int) -> None:
            tally.scan_progress += n
            advance(n)

        batch = cfg.scan_batch_size or default_batch_size(model.device)
        scan = ray.scan(units, folder, k=cfg.images_per_side, key=units_key, batch_size=batch,
                        store=RecordStore(out / CACHE_DIR), progress=scanned) if ray else \
            scan_dataset(model, units, folder, k=cfg.images_per_side, batch_size=batch,
                         num_workers=cfg.num_workers, key=units_key,
                         checkpoint=out / CACHE_DIR / "scan" / f"partial-{units_key}.pt",
                         progress=scanned)
    readable = scan.n_images - scan.n_skipped
    if readable < 2 * cfg.images_per_side:
        raise ConfigError(
            f"[stimuli] dataset: only {readable} of {scan.n_images} images are readable; "
            f"{cfg.images_per_side} per side needs at least {2 * cfg.images_per_side}"
        )
    return scan


def _write_exemplars(
    cfg: StimuliConfig, units: list[UnitRef], scans: dict[str, dict[str, Any]], folder: ImageFolder,
    out: Path, progress: Progress,
) -> dict[str, NaturalExemplars]:
    """Assign batches and save each chosen crop; each source image is decoded once."""
    ext = _extension(cfg)
    plans: dict[str, list[tuple[list, list]]] = {}
    destinations: dict[int, list[Path]] = {}
    for unit in units:
        top = [tuple(x) for x in scans[unit.id]["top"]]
        bottom = [tuple(x) for x in scans[unit.id]["bottom"]]
        max_batches = assign_batches(top, cfg.batches, cfg.images_per_batch,
                                     _bin_seed(cfg, unit, "max"))
        min_batches = assign_batches(bottom, cfg.batches, cfg.images_per_batch,
                                     _bin_seed(cfg, unit, "min"))
        batches = []
        for b in range(cfg.batches):
            # Ascending activation on both sides: reverse the most-extreme-first max list.
            max_list, min_list = list(reversed(max_batches[b])), min_batches[b]
            batches.append((max_list, min_list))
            for side, items in (("max", max_list), ("min", min_list)):
                for rank, (_, index) in enumerate(items):
                    path = out / unit.slug / "natural" / f"batch_{b:02d}" / f"{side}_{rank}.{ext}"
                    destinations.setdefault(index, []).append(path)
        plans[unit.id] = batches

    digests = _save_crops(cfg, folder, destinations, progress)
    natural = {}
    for unit in units:
        exemplar_batches = []
        for b, (max_list, min_list) in enumerate(plans[unit.id]):
            refs = {}
            for side, items in (("max", max_list), ("min", min_list)):
                refs[side] = [
                    ImageRef(
                        path=f"{unit.slug}/natural/batch_{b:02d}/{side}_{rank}.{ext}",
                        sha256=digests[index], activation=float(value), dataset_index=index,
                        source=folder.files[index],
                    )
                    for rank, (value, index) in enumerate(items)
                ]
            exemplar_batches.append(ExemplarBatch(index=b, max=refs["max"], min=refs["min"]))
        natural[unit.id] = NaturalExemplars(batches=exemplar_batches)
    return natural


def _bin_seed(cfg: StimuliConfig, unit: UnitRef, side: str) -> int | None:
    """The seed of a unit's bin shuffle: the feature map and side alone (as the authors
    seeded theirs by the feature map), or None for ranked bins."""
    if cfg.bin_order != "shuffled":
        return None
    return derive_seed("exemplar-bins", unit.layer, unit.channel, side)


def _save_crops(cfg: StimuliConfig, folder: ImageFolder, destinations: dict[int, list[Path]],
                progress: Progress) -> dict[int, str]:
    def encode(index: int) -> tuple[int, bytes]:
        try:
            crop = load_crop(folder.path(index))
        except DECODE_ERRORS as exc:
            raise CrowdkitError(
                f"{folder.path(index)} could not be read again after the scan ({exc}); "
                "did the dataset change? Run `crowdkit stimuli` again"
            ) from None
        return index, _encode(crop, cfg)

    digests: dict[int, str] = {}
    workers = min(8, os.cpu_count() or 1)
    with (progress("saving exemplars", total=len(destinations)) as advance,
          ThreadPoolExecutor(max_workers=workers) as pool):
        for index, data in pool.map(encode, sorted(destinations)):
            digests[index] = sha256_bytes(data)
            for path in destinations[index]:
                write_atomically(path, data)
            advance(1)
    return digests


def _extension(cfg: StimuliConfig) -> str:
    return "jpg" if cfg.image_format == "jpeg" else "png"


def _encoding(cfg: StimuliConfig) -> dict[str, Any]:
    """What decides an image file's bytes besides its pixels, for the cache keys."""
    return {"format": cfg.image_format,
            "quality": cfg.jpeg_quality if cfg.image_format == "jpeg" else 0}


def _encode(image: Image.Image, cfg: StimuliConfig) -> bytes:
    buffer = io.BytesIO()
    if cfg.image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=cfg.jpeg_quality, subsampling=0)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _files_intact(out: Path, block: dict[str, Any]) -> bool:
    """Every file a record names exists with its recorded sha256."""
    refs = list(block.get("max", [])) + list(block.get("min", []))
    for batch in block.get("batches", []):
        refs += batch["max"] + batch["min"]
    for ref in refs:
        path = out / ref["path"]
        if not path.is_file() or file_digest(path) != ref.get("sha256"):
            return False
    return True


# -- feature visualizations -------------------------------------------------------------


@dataclass
class _SyntheticWork:
    """The feature visualizations already there (`records`) and those still to render."""

    settings: RenderSettings
    transform_seed: int
    records: dict[tuple[str, str], dict[str, Any]]
    todo: list[RenderTarget]
    keys: dict[tuple[str, str], str]


def _synthetic_todo(cfg: StimuliConfig, model: LoadedModel, units: list[UnitRef], seed: int,
                    out: Path, store: RecordStore, tally: _Tally) -> _SyntheticWork:
    settings = RenderSettings.from_dict(cfg.synthetic.settings())
    transform_seed = derive_seed(seed, "synthetic-transforms")
    base = {"model": model.fingerprint(), "settings": settings.as_dict(),
            "transform_seed": transform_seed, **_encoding(cfg)}
    records: dict[tuple[str, str], dict[str, Any]] = {}
    todo: list[RenderTarget] = []
    keys: dict[tuple[str, str], str] = {}
    for unit in units:
        for direction in DIRECTIONS:
            init_seed = derive_seed(seed, "synthetic-init", unit.id, direction)
            key = fingerprint({**base, "layer": unit.layer, "channel": unit.channel,
                               "init_seed": init_seed})
            keys[(unit.id, direction)] = key
            record = store.get("synthetic", f"{unit.slug}-{direction}", key)
            if record and _files_intact(out, {"max": record["images"]}):
                records[(unit.id, direction)] = record
                tally.synthetic_reused += 1
            else:
                todo.append(RenderTarget(unit.id, unit.layer, unit.channel, direction, init_seed))
    return _SyntheticWork(settings, transform_seed, records, todo, keys)


def _feature_visualizations(
    cfg: StimuliConfig, model: LoadedModel, units: list[UnitRef], seed: int,
    work: _SyntheticWork, out: Path, store: RecordStore, progress: Progress, tally: _Tally,
    ray: RayTarget | None = None,
) -> dict[str, SyntheticImages]:
    settings, transform_seed = work.settings, work.transform_seed
    records, todo, keys = work.records, work.todo, work.keys
    by_id = {u.id: u for u in units}
    if todo:
        layer_order = {name: info.order
                       for name, info in probe_layers(model, [t.layer for t in todo]).items()}
        def finish(groups: list[RenderedGroup]) -> None:
            for group in groups:
                unit = by_id[group.target.key]
                record = _save_group(cfg, unit, group, out)
                store.put("synthetic", f"{unit.slug}-{group.target.direction}",
                          keys[(unit.id, group.target.direction)], record)
                records[(unit.id, group.target.direction)] = record
                tally.synthetic_rendered += 1

        with progress(f"rendering {len(todo)} unit-directions",
                      total=len(todo) * settings.steps) as advance:
            if ray is not None:
                ray.render(todo, settings, transform_seed, layer_order,
                           cfg.synthetic.chunk_images, finish, advance)
            else:
                for groups in render_targets(model, todo, settings,
                                             transform_seed=transform_seed,
                                             layer_order=layer_order,
                                             chunk_images=cfg.synthetic.chunk_images,
                                             on_step=advance):
                    finish(groups)

    synthetic = {}
    for unit in units:
        mx, mn = records[(unit.id, "max")], records[(unit.id, "min")]
        synthetic[unit.id] = SyntheticImages(
            max=[ImageRef.model_validate(r) for r in mx["images"]],
            min=[ImageRef.model_validate(r) for r in mn["images"]],
            parameters={
                "preset": cfg.synthetic.preset,
                **settings.as_dict(),
                "seed": seed,
                "transform_seed": transform_seed,
                "init_seed": {"max": mx["init_seed"], "min": mn["init_seed"]},
                "final_channel_mean": {"max": mx["final_channel_mean"],
                                       "min": mn["final_channel_mean"]},
                "final_diversity": {"max": mx["final_diversity"], "min": mn["final_diversity"]},
                "objective": OBJECTIVE,
                "rescored_on": f"the saved {settings.final_size} px crop, no transforms",
            },
        )
    return synthetic


def _save_group(cfg: StimuliConfig, unit: UnitRef, group: RenderedGroup, out: Path) -> dict:
    """Save a group's images in ascending order of re-scored activation."""
    ext = _extension(cfg)
    direction = group.target.direction
    order = np.argsort(np.asarray(group.activations), kind="stable")
    refs = []
    for rank, i in enumerate(order):
        data = _encode(Image.fromarray(group.images[i]), cfg)
        rel = f"{unit.slug}/synthetic/{direction}_{rank}.{ext}"
        write_atomically(out / rel, data)
        refs.append({"path": rel, "sha256": sha256_bytes(data),
                     "activation": group.activations[i]})
    return {"images": refs, "init_seed": group.target.init_seed,
            "final_channel_mean": group.final_channel_mean,
            "final_diversity": group.final_diversity}


# -- helpers -----------------------------------------------------------------------------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crowdkit")
    except PackageNotFoundError:
        return "dev"
