"""study.toml -> a validated Study, and the paths of a study directory.

Every command that takes a study directory calls `load_study` before it does anything
else, so a malformed file is reported (one line per problem) before anything is written.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from crowdkit import platforms
from crowdkit.errors import ConfigError
from crowdkit.units import Duration, Money
from stimgen.config import StimuliConfig

STUDY_FILE = "study.toml"
CONDITIONS = ("natural", "synthetic", "none")


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


class DesignSection(Section):
    """How manifests become tasks. A task is what one HIT shows one participant."""

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


class HitSection(Section):
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


class QualificationsSection(Section):
    min_approval_rate: int | None = Field(default=95, ge=0, le=100)
    min_approved_hits: int | None = Field(default=1000, ge=0)
    locales: list[str] = Field(default_factory=lambda: ["US"])
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


class StorageSection(Section):
    bucket: str | None = None
    prefix: str = "crowdkit"
    region: str = "us-east-1"
    hit_size_budget_mb: float = Field(default=15.0, gt=0)


class MturkSection(Section):
    target: Literal["local", "sandbox", "live"] = "local"
    local_endpoint: str = "http://127.0.0.1:8765"
    profile: str | None = None


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
    return Study(root=root, config=parse_study_toml(path.read_text(encoding="utf-8"), str(path)))


def parse_study_toml(text: str, filename: str = STUDY_FILE) -> StudyConfig:
    """Parse and validate study.toml text. Errors name the file, the key and what was expected."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
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
