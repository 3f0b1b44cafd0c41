"""study.toml -> a validated Study, and the paths of a study directory.

Every command that takes a study directory calls `load_study` before it does anything
else, so a malformed file is reported (one line per problem) before anything is written.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crowdkit import platforms
from crowdkit.errors import ConfigError
from crowdkit.units import Duration, Money, format_duration
from stimgen.config import StimuliConfig

STUDY_FILE = "study.toml"
CONDITIONS = ("natural", "synthetic", "none")
# MTurk's limits on a HIT (API reference: CreateHITType, CreateHITWithHITType).
MIN_REWARD = Decimal("0.01")
MAX_KEYWORDS_CHARS = 1000
DURATION_LIMITS = {"assignment_duration": (30, 365 * 86400), "lifetime": (30, 365 * 86400),
                   "auto_approval_delay": (0, 30 * 86400)}
LOCALE = re.compile(r"^[A-Za-z]{2}(-[A-Za-z0-9]{2})?$")


def _fraction(value: object) -> object:
    """Accept 0.667 or "2/3" for thresholds that are naturally fractions (anything else goes
    on to pydantic's float validation as it came)."""
    if isinstance(value, str) and "/" in value:
        try:
            return float(Fraction(value.replace(" ", "")))
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f'expected a fraction such as "2/3" or 0.667, got {value!r}') from exc
    return value


Fraction01 = Annotated[float, BeforeValidator(_fraction), Field(ge=0, le=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StudySection(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    seed: int = 0
    description: str = ""
    platform: str = "mturk"  # the crowd platform (crowdkit.platforms); MTurk is the first

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str) -> str:
        if value not in platforms.names():
            raise ValueError(f"unknown platform {value!r}; known: "
                             f"{', '.join(platforms.names())}")
        return value


class ReferenceSet(Section):
    """One way of showing references: which sides, and how many images per side."""

    mode: Literal["min+max", "max-only"] = "min+max"
    n: int = Field(default=9, ge=1, le=9)


INTUITIVENESS = ("How intuitive do you find the explanation of these optimized images for the "
                 "given natural images?")


class RatingsSection(Section):
    """Rating trials ([design.ratings]): a unit's explanation rated on a slider, as the
    paper's intuitiveness ratings. No units: no rating trials."""

    units: list[str] = Field(default_factory=list)
    at: Literal["start", "end", "both"] = "start"
    explanation: str = "synthetic"  # the condition whose images are rated
    given: str = "natural"  # the images the explanation is for; "" shows none
    n_images: int = Field(default=9, ge=1, le=9)
    question: str = Field(default=INTUITIVENESS, min_length=1, max_length=500)
    low: int = Field(default=-100, ge=-10_000, le=10_000)
    high: int = Field(default=100, ge=-10_000, le=10_000)
    labels: list[str] = Field(default_factory=lambda: ["not intuitive at all",
                                                       "very intuitive"],
                              min_length=2, max_length=2)

    @model_validator(mode="after")
    def _a_scale(self) -> RatingsSection:
        if self.low >= self.high:
            raise ValueError(f"low = {self.low} must be below high = {self.high}")
        if self.given == self.explanation:
            raise ValueError(f"given = {self.given!r} is the explanation itself")
        return self


class DesignSection(Section):
    """How manifests become tasks. A task is what one HIT shows one participant.

    The keys after `seed` build the lab designs of the paper (docs/design.md, "The lab
    design"); their defaults leave a design exactly as it was without them."""

    conditions: list[str] = Field(default_factory=lambda: ["natural", "synthetic"], min_length=1)
    assignment: Literal["between", "within"] = "between"
    reference_mode: Literal["min+max", "max-only"] = "min+max"
    n_references: int = Field(default=9, ge=1, le=9)
    tasks: int = Field(default=10, ge=1)
    trials_per_task: int = Field(default=18, ge=1)
    catch_trials_per_task: int = Field(default=3, ge=0)
    practice_trials: int = Field(default=2, ge=0)
    practice_units: list[str] = Field(default_factory=list)
    n_practice_units: int = Field(default=1, ge=0)
    max_side: Literal["left", "right"] = "right"
    seed: int | None = None
    image_selection: Literal["strongest", "fixed"] = "strongest"
    reference_sets: list[ReferenceSet] = Field(default_factory=list)
    blocks_per_condition: int = Field(default=1, ge=1)
    baseline: list[Literal["pre", "post"]] = Field(default_factory=list)
    baseline_trials: int = Field(default=0, ge=0)
    baseline_blocks: int = Field(default=1, ge=1)
    practice_placement: Literal["start", "per_condition"] = "start"
    catch_units: Literal["main", "practice"] = "main"
    repeated_trials: int = Field(default=0, ge=0)
    batch_assignment: Literal["cycle", "per_task"] = "cycle"
    feedback: Literal["practice", "all"] = "practice"
    block_score: bool = False
    ratings: RatingsSection = Field(default_factory=RatingsSection)

    @model_validator(mode="after")
    def _lab_keys_agree(self) -> DesignSection:
        if self.block_score and self.feedback != "all":
            raise ValueError('block_score needs feedback = "all": the page can only count '
                             "right answers it knows")
        if self.baseline_trials and not self.baseline:
            raise ValueError('baseline_trials needs baseline = ["pre"], ["post"] or both')
        if self.baseline and not self.baseline_trials:
            raise ValueError("baseline needs baseline_trials (main trials without references)")
        if len(set(self.baseline)) != len(self.baseline):
            raise ValueError("baseline lists a part twice")
        return self

    @property
    def lab(self) -> bool:
        """Whether any lab key is in use: then blocks are numbered through the task (practice
        blocks included) and the page is told each trial's block."""
        return bool(self.reference_sets or self.blocks_per_condition > 1 or self.baseline
                    or self.practice_placement != "start" or self.catch_units != "main"
                    or self.repeated_trials or self.batch_assignment != "cycle"
                    or self.feedback != "practice" or self.ratings.units)

    def references(self) -> list[ReferenceSet]:
        """The reference sets each condition is shown with: `reference_sets`, or the one
        set `reference_mode` and `n_references` describe."""
        return self.reference_sets or [ReferenceSet(mode=self.reference_mode,
                                                    n=self.n_references)]


class HitSection(Section):
    """What every HIT of the study is. Values MTurk refuses are refused here, when the study
    is loaded, rather than at publish after the images are uploaded."""

    title: str = Field(min_length=1, max_length=128)
    description: str = Field(min_length=1, max_length=2000)
    keywords: list[str] = Field(default_factory=list)
    reward: Money
    expected_time: Duration = 900
    assignment_duration: Duration = 2700
    lifetime: Duration = 3 * 86400
    auto_approval_delay: Duration = 3 * 86400
    assignments_per_task: int = Field(default=1, ge=1)
    max_assignments_per_hit: int = Field(default=9, ge=1)

    @field_validator("reward")
    @classmethod
    def _paid(cls, value: Decimal) -> Decimal:
        if value < MIN_REWARD:
            raise ValueError(f"MTurk pays at least ${MIN_REWARD} per assignment, got "
                             f"${value}")
        return value

    @field_validator("keywords")
    @classmethod
    def _short_keywords(cls, value: list[str]) -> list[str]:
        if len(", ".join(value)) > MAX_KEYWORDS_CHARS:
            raise ValueError(f"MTurk takes at most {MAX_KEYWORDS_CHARS} characters of keywords "
                             "(joined with commas)")
        return value

    @field_validator("assignment_duration", "lifetime", "auto_approval_delay")
    @classmethod
    def _mturk_duration(cls, value: int, info: ValidationInfo) -> int:
        low, high = DURATION_LIMITS[str(info.field_name)]
        if not low <= value <= high:
            raise ValueError(f"MTurk takes {format_duration(low)} to {format_duration(high)}, "
                             f"got {format_duration(value)}")
        return value


class QualificationsSection(Section):
    min_approval_rate: int | None = Field(default=95, ge=0, le=100)
    min_approved_hits: int | None = Field(default=1000, ge=0)
    locales: list[str] = Field(default_factory=lambda: ["US"], max_length=30)

    @field_validator("locales")
    @classmethod
    def _iso_locales(cls, value: list[str]) -> list[str]:
        for locale in value:
            if not LOCALE.match(locale.strip()):
                raise ValueError(f'{locale!r} is not a locale such as "US" or "US-NY" (an ISO '
                                 "3166 two-letter country code, optional subdivision)")
        return value

    masters: bool = False
    exclude_studies: list[str] = Field(default_factory=list)
    expert_qualification: str | None = None


class QualitySection(Section):
    min_catch_accuracy: Fraction01 = 2 / 3
    min_total_time: Duration = 60
    max_total_time: Duration = 2 * 3600
    min_instruction_time: Duration = 5
    max_same_response_fraction: Fraction01 = 0.9
    fast_rt_ms: int = Field(default=300, ge=0)
    max_fast_fraction: Fraction01 = 0.2
    max_practice_attempts: int = Field(default=3, ge=1)
    first_assignment_only: bool = True
    require_complete: bool = True


class ParticipantsSection(Section):
    expert_rule: Literal["questionnaire", "worker_list", "qualification", "any"] = "any"
    expert_workers: list[str] = Field(default_factory=list)
    questionnaire_expert_min_level: int = Field(default=2, ge=0, le=3)


def _http_url(value: str | None) -> str | None:
    """An http(s) URL without a trailing slash, or None."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


class StorageSection(Section):
    """Where the images are hosted (crowdkit.store): S3 or an S3-compatible service, or the
    local service's files."""

    # "s3" or "local"; unset: local for the local target, s3 for sandbox and live.
    backend: Literal["s3", "local"] | None = None
    bucket: str | None = None
    prefix: str = "crowdkit"
    region: str = "us-east-1"
    # An S3-compatible API instead of AWS's (MinIO, Ceph, Cloudflare R2, moto's server).
    endpoint_url: str | None = None
    # Where browsers load the images instead (a CDN, a custom domain): the URL of the
    # bucket's root, so an image is at public_base_url/<prefix>/<study>/<hash>.<ext>.
    public_base_url: str | None = None
    hit_size_budget_mb: float = Field(default=15.0, gt=0)

    @field_validator("endpoint_url", "public_base_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    def backend_for(self, target: str) -> str:
        """The hosting in force for `target`: the explicit backend, else by target."""
        return self.backend or ("local" if target == "local" else "s3")


class MturkSection(Section):
    target: Literal["local", "sandbox", "live"] = "local"
    local_endpoint: str = "http://127.0.0.1:8765"
    profile: str | None = None

    @field_validator("local_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise ValueError(f'expected an http URL such as "http://127.0.0.1:8765" (port 1 to '
                             f"65535), got {value!r}")
        return value


class ReviewSection(Section):
    policy: Literal["approve-all", "approve-unless-fraud", "approve-passing"] = (
        "approve-unless-fraud"
    )
    reject_message: str = (
        "Your submission could not be accepted because it did not follow the instructions."
    )
    bonus: Money = Decimal("0.00")
    bonus_rule: Literal["none", "all", "passing"] = "none"
    bonus_reason: str = "Thank you for your careful work."
    # Block the workers whose answers review rejects as tampered (CreateWorkerBlock): they
    # can take no HIT of this requester again. Off by default; only tampering counts.
    block_fraud: bool = False
    block_reason: str = Field(
        default="Submitted answers that were edited outside the task page.",
        min_length=1, max_length=1000)


class PageTexts(Section):
    """Wording of the worker's page, screen by screen. Unset keys keep the packaged wording.

    Plain text, never HTML (it is escaped); a blank line starts a new paragraph.
    """

    preview: str | None = None  # the preview screen; unset: [hit] description
    example: str | None = None  # caption of the worked example in the instructions
    practice: str | None = None  # before the first practice trial
    practice_retry: str | None = None  # after a practice round with a mistake
    practice_passed: str | None = None  # after a practice round without mistakes
    practice_exhausted: str | None = None  # attempts used up: the task goes on anyway
    main: str | None = None  # before the first main trial
    block_break: str | None = None  # between blocks of different reference types
    block_score: str | None = None  # the score after a block ([design] block_score)
    rating: str | None = None  # before the rating trials ([design.ratings])
    questionnaire: str | None = None  # above the questionnaire
    too_small: str | None = None  # the window is smaller than the layout needs


class PageSection(Section):
    """What the worker's page says and how it behaves (hit_templates)."""

    templates_dir: str | None = None
    instructions: str = ""  # study-specific instructions; empty: the packaged explanation
    texts: PageTexts = Field(default_factory=PageTexts)
    practice_max_attempts: int = Field(default=3, ge=1, le=100)
    min_window_width: int = Field(default=1000, ge=320)
    min_window_height: int = Field(default=600, ge=240)
    questionnaire: bool = True
    feedback_ms: int = Field(default=1500, ge=0, le=60_000)  # practice feedback on screen
    inter_trial_ms: int = Field(default=400, ge=0, le=10_000)  # blank screen between trials


class ComputeSection(Section):
    """Where the heavy work runs: `ray` names a Ray cluster for `crowdkit stimuli` and
    `crowdkit mis` ("local" starts one on this machine; "auto", "ray://host:10001" or
    "host:6379" join one); empty: in this process."""

    ray: str = ""


class MisSection(Section):
    """The machine observer (`crowdkit mis`, docs/mis.md)."""

    similarity: Literal["dreamsim", "lpips", "features"] = "dreamsim"
    alpha: float = Field(default=0.16, gt=0)  # the classifier's constant (the paper's)
    feature_model: str = "resnet18"  # similarity = "features": a torchvision/lucent model
    feature_weights: str = "random"  # "random" (seeded, no download), "pretrained", a file
    feature_layers: list[str] = Field(default_factory=list)  # empty: the model's defaults
    batch_size: int | None = Field(default=None, ge=1)  # images embedded at once
    device: str = "auto"
    seed: int | None = None  # draws for --all-units and random feature weights


class StudyConfig(Section):
    study: StudySection
    stimuli: StimuliConfig = Field(default_factory=StimuliConfig)
    design: DesignSection = Field(default_factory=DesignSection)
    hit: HitSection
    qualifications: QualificationsSection = Field(default_factory=QualificationsSection)
    quality: QualitySection = Field(default_factory=QualitySection)
    participants: ParticipantsSection = Field(default_factory=ParticipantsSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    mturk: MturkSection = Field(default_factory=MturkSection)
    review: ReviewSection = Field(default_factory=ReviewSection)
    page: PageSection = Field(default_factory=PageSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
    mis: MisSection = Field(default_factory=MisSection)

    @property
    def design_seed(self) -> int:
        return self.study.seed if self.design.seed is None else self.design.seed


@dataclass(frozen=True)
class Study:
    """A study directory and its validated configuration."""

    root: Path
    config: StudyConfig

    @property
    def name(self) -> str:
        return self.config.study.name

    @property
    def toml_path(self) -> Path:
        return self.root / STUDY_FILE

    @property
    def stimuli_dir(self) -> Path:
        return self.root / "stimuli"

    @property
    def manifest_path(self) -> Path:
        return self.stimuli_dir / "manifest.json"

    @property
    def db_path(self) -> Path:
        return self.root / "study.db"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def target_data_dir(self, target: str) -> Path:
        """Where collect writes one target's data: each target's apart from the others'."""
        return self.data_dir / target

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def design_dir(self) -> Path:
        """Files the design derives from the stimuli (such as catch-trial copies)."""
        return self.root / "design"


def load_study(root: Path | str = ".") -> Study:
    """Load and validate `root/study.toml`; raise ConfigError with one line per problem."""
    root = Path(root)
    path = root / STUDY_FILE
    if not path.is_file():
        hint = "" if root.is_dir() else f" (the directory {root} does not exist)"
        raise ConfigError(
            f"{path}: no study.toml here{hint}; create one with `crowdkit init {root}`"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                          f"offset {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    study = Study(root=root, config=parse_study_toml(text, str(path)))
    check_study_paths(study)
    return study


def check_study_paths(study: Study) -> None:
    """Settings that name folders of the study: checked when it is loaded."""
    folder = study.config.page.templates_dir
    if folder is not None and not (study.root / folder).is_dir():
        raise ConfigError(f"{study.toml_path}: [page] templates_dir: no folder at "
                          f"{study.root / folder}")


def parse_study_toml(text: str, filename: str = STUDY_FILE) -> StudyConfig:
    """Parse and validate study.toml text. Errors name the file, the key and what was expected."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{filename}: arrays or tables are nested too deeply to read") from None
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{filename}: {line}" for line in describe_validation_error(exc, StudyConfig)]
        raise ConfigError(lines[0], lines=lines) from None


def describe_validation_error(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One readable line per pydantic error: `[section] key: what was expected`."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = _format_loc(loc)
        if err["type"] == "extra_forbidden":
            known = _known_keys(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            if not close and known:
                hint = f"; known keys: {', '.join(sorted(known))}"
            lines.append(f"{where}: unknown key{hint}")
        elif err["type"] == "missing":
            lines.append(f"{where}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg}")
    return lines


def _format_loc(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "(top level)"
    section, *rest = [str(p) for p in loc]
    if not rest:
        return f"[{section}]" if section in StudyConfig.model_fields else section
    return f"[{section}] " + ".".join(rest)


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the (nested) model at `loc`, for "did you mean" hints."""
    current: object = model  # a model class, or whatever annotation a field has
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []
