"""hit_templates + trial types -> the worker's HTML page (and MTurk's HTMLQuestion of it).

The page is one self-contained document: the Jinja templates in the `hit_templates` package
(or a study's own folder, which takes precedence) inline their CSS and JavaScript, each
trial type of the task adds its screen, explanation, example and script from its own folder
(`<type>/screen.html`, `<type>/trial.js`, ...; crowdkit.trials), and the task itself
travels as one JSON object in a `<script type="application/json">` element.

That JSON holds only the public task. Image keys ("<hex digest>.<ext>") are packed as raw
digest bytes in base64 -- about half the size of hex -- so a 40-trial HIT with 9 + 9
references stays well inside MTurk's 64 KB; the page turns them back into
`image_base_url + key` URLs. Nothing in it says which query is the max one or which trial
is a catch trial; `check_public_task` refuses a task whose ids or fields would.
"""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

import hit_templates
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.platforms.mturk.question import (
    HTML_QUESTION_NS,
    QUESTION_LIMIT_BYTES,
    check_question_size,
    html_question_xml,
    question_size,
)
from crowdkit.study import StudyConfig
from crowdkit.tasks import PublicTask
from crowdkit.trials import registry
from crowdkit.trials.base import DEFAULT_TYPE, PublicTrialBase
from crowdkit.units import money_str

__all__ = [
    "HTML_QUESTION_NS", "QUESTION_LIMIT_BYTES", "check_public_task", "check_question_size",
    "describe_duration", "html_question_xml", "page_data", "question_size", "render_question",
    "render_task_html", "template_environment",
]

PAGE_TEMPLATE = "task.html"
PACKAGED_TEMPLATES = Path(next(iter(hit_templates.__path__))).resolve()
_IMAGE_KEY = re.compile(r"^((?:[0-9a-f]{2}){8,64})\.([a-z0-9]{1,8})$")
# Words that must never appear in what the page knows about a test trial.
_TELLTALE = re.compile(r"max|min|catch", re.IGNORECASE)


def template_environment(override_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja environment over the packaged templates, with `override_dir` taking precedence.

    Autoescape is on for every template, whatever its extension: text that reaches the page
    (researcher wording, ids) is always escaped. Environments are cached per folder, so
    publishing a thousand tasks compiles each template once (Jinja still reloads a template
    whose file changed).
    """
    return _cached_environment(None if override_dir is None else str(override_dir.resolve()))


@functools.lru_cache(maxsize=16)
def _cached_environment(override_dir: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders.append(jinja2.FileSystemLoader(str(PACKAGED_TEMPLATES)))
    loaders.append(jinja2.PrefixLoader({
        name: jinja2.FileSystemLoader(str(registry.get(name).template_dir))
        for name in registry.names()}))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "sort_keys": False}
    env.filters["paragraphs"] = paragraphs
    return env


def paragraphs(text: str) -> Markup:
    """Plain text -> escaped `<p>` elements; a blank line starts a new paragraph."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return Markup("").join(Markup("<p>{}</p>").format(escape(p)) for p in parts)


def describe_duration(seconds: int) -> str:
    """Expected time as a worker reads it: "about 15 minutes", "about 1 hour 30 minutes"."""
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours > 1 else ""))
    if minutes:
        parts.append(f"{minutes} minute" + ("s" if minutes > 1 else ""))
    return "about " + " ".join(parts)


def check_public_task(task: PublicTask, feedback_allowed: bool = False) -> None:
    """Refuse a task the page could leak the answer from, before any of it is rendered.

    Keys must be content hashes; a trial's type must find nothing in it that gives the
    answer away (2-AFC: feedback on a test trial, unless the study asks for feedback after
    every trial: `feedback_allowed`), and no test trial's id or condition may contain
    "max", "min" or "catch".
    """
    where = f"task {task.task_id}"
    for trial in task.trials:
        for key in trial_image_keys(trial):
            if not _IMAGE_KEY.match(key):
                raise CrowdkitError(
                    f"{where}, trial {trial.trial_id}: image key {key!r} is not a content-hash "
                    'key ("<hex digest>.<ext>"); the page only shows hashed keys'
                )
        leak = registry.get(trial.type).leak(trial, feedback_allowed)
        if leak:
            raise CrowdkitError(f"{where}, trial {trial.trial_id}: {leak}")
        if trial.phase == "practice":
            continue
        for field in ("trial_id", "condition"):
            value = getattr(trial, field)
            if telltale := _TELLTALE.search(value):
                raise CrowdkitError(
                    f"{where}: test trial {field} {value!r} contains "
                    f"{telltale.group(0)!r}, which would leak the answer"
                )


def trial_image_keys(trial: PublicTrialBase) -> list[str]:
    """A trial's image keys in the order its type's script takes them."""
    return registry.get(trial.type).image_keys(trial)


def page_data(task: PublicTask, config: StudyConfig, image_base_url: str) -> dict[str, Any]:
    """The JSON the page runs on: the public task with packed image keys, and its settings.

    Images are listed trial by trial in screen order (left references, right references,
    top query, bottom query); each trial says how many references each side has.
    """
    check_public_task(task, feedback_allowed=config.design.feedback == "all")
    keys = [key for trial in task.trials for key in trial_image_keys(trial)]
    digests, exts = [], []
    for key in keys:
        match = _IMAGE_KEY.match(key)
        if match is None:  # check_public_task refused such a key already
            raise CrowdkitError(f"task {task.task_id}: image key {key!r} is not a content hash")
        hex_digest, ext = match.groups()
        digests.append(bytes.fromhex(hex_digest))
        exts.append(ext)
    if len({len(d) for d in digests}) > 1:
        raise CrowdkitError(f"task {task.task_id}: image keys of different lengths in one task")
    ext_table = sorted(set(exts))
    if len(ext_table) > 10:
        raise CrowdkitError(f"task {task.task_id}: more than 10 image file types in one task")
    page = config.page
    trials = []
    for trial in task.trials:
        item = registry.get(trial.type).page_item(trial)
        if trial.type != DEFAULT_TYPE:
            item["type"] = trial.type
        trials.append(item)
    data: dict[str, Any] = {
        "task": task.task_id,
        "base": _base_url(image_base_url),
        "bytes": len(digests[0]) if digests else 16,
        "keys": base64.b64encode(b"".join(digests)).decode("ascii"),
        "ext": ext_table,
        "trials": trials,
        "settings": {
            "attempts": page.practice_max_attempts,
            "feedback_ms": page.feedback_ms,
            "iti_ms": page.inter_trial_ms,
            "window": [page.min_window_width, page.min_window_height],
            "questionnaire": page.questionnaire,
            **({"block_score": True} if config.design.block_score else {}),
        },
    }
    if len(ext_table) > 1:
        data["exti"] = "".join(str(ext_table.index(e)) for e in exts)
    return data


def _base_url(url: str) -> str:
    if not url or any(c.isspace() or c in "\"'<>\\" for c in url):
        raise CrowdkitError(f"image base URL {url!r} is empty or has characters a URL cannot")
    return url if url.endswith("/") else url + "/"


def render_task_html(
    task: PublicTask,
    config: StudyConfig,
    image_base_url: str,
    *,
    study_root: Path | None = None,
) -> str:
    """Render one task into the worker's page: one self-contained HTML document.

    Templates in [page] templates_dir, relative to `study_root`, take precedence over the
    packaged ones, file by file.
    """
    env = template_environment(_study_templates(config, study_root))
    practice = [t for t in task.trials if t.phase == "practice"]
    tests = [t for t in task.trials if t.phase == "test"]
    type_names = list(dict.fromkeys(t.type for t in task.trials)) or [DEFAULT_TYPE]
    context: dict[str, Any] = {}
    for name in type_names:
        context.update(registry.get(name).page_context(
            [t for t in task.trials if t.type == name], config))
    context.update({
        "title": config.hit.title,
        "description": config.hit.description,
        "expected_time": describe_duration(config.hit.expected_time),
        "reward": f"${money_str(config.hit.reward)}",
        "page": config.page,
        "texts": config.page.texts,
        "instructions": config.page.instructions,
        "n_practice": len(practice),
        "n_tests": len(tests),
        "feedback_all": config.design.feedback == "all",
        "lab": config.design.lab,
        "trial_parts": [{"name": name} for name in type_names],
        "default_type": DEFAULT_TYPE,
        "data": page_data(task, config, image_base_url),
    })
    try:
        return env.get_template(PAGE_TEMPLATE).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise CrowdkitError(
            f"HIT template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise CrowdkitError(f"HIT template not found: {exc.name}") from None
    except jinja2.UndefinedError as exc:
        raise CrowdkitError(f"HIT template uses an unknown name: {exc.message}") from None


def _study_templates(config: StudyConfig, study_root: Path | None) -> Path | None:
    folder = config.page.templates_dir
    if folder is None:
        return None
    path = (study_root or Path(".")) / folder
    if not path.is_dir():
        raise ConfigError(f"[page] templates_dir: no folder at {path}")
    return path


def render_question(
    task: PublicTask,
    config: StudyConfig,
    image_base_url: str,
    *,
    study_root: Path | None = None,
) -> str:
    """The MTurk HTMLQuestion XML for one task, checked against MTurk's size limit."""
    xml = html_question_xml(render_task_html(task, config, image_base_url, study_root=study_root))
    check_question_size(xml, task.task_id)
    return xml
