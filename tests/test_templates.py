"""The worker's page as rendered text: packing, escaping, overrides, XML, size, no leaks.

What the page does in a browser is in test_page_browser.py; here is what can be checked on
the rendered document itself, and the preview server over plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest

from crowdkit.design import Feedback, PublicTask, Queries
from crowdkit.errors import ConfigError, CrowdkitError
from crowdkit.preview import FAKE_ASSIGNMENT_ID, PreviewServer
from crowdkit.templates import (
    HTML_QUESTION_NS,
    QUESTION_LIMIT_BYTES,
    check_question_size,
    describe_duration,
    html_question_xml,
    render_question,
    render_task_html,
)
from tests.hit_page_helpers import SampleTask, build_sample_task, study_config

BASE = "https://bucket.s3.us-east-1.amazonaws.com/crowdkit/pagetest/images/"
TELLTALE_WORD = re.compile(r"max|min|catch", re.IGNORECASE)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> SampleTask:
    return build_sample_task(tmp_path_factory.mktemp("images"))


class PageParts(HTMLParser):
    """Everything in a page except the words a worker reads: tags, attributes, code, data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": [], "json": []}
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if tag == "script":
            self._inside = "json" if attributes.get("type") == "application/json" else "script"
        elif tag == "style":
            self._inside = "style"

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._inside = None

    def handle_data(self, data):
        if self._inside:
            self.raw[self._inside].append(data)


def parse_page(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    return parts


def task_data(html: str) -> dict:
    return json.loads("".join(parse_page(html).raw["json"]))


def code_words(code: str) -> list[str]:
    """Identifier words of code: "timingMs" -> ["timing", "Ms"], "query-top" -> [...]."""
    return re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", code)


def urls_from_data(data: dict) -> list[str]:
    """Decode the packed keys the way task.js does."""
    raw = base64.b64decode(data["keys"])
    n = data["bytes"]
    urls = []
    for i in range(len(raw) // n):
        ext = data["ext"][int(data["exti"][i]) if "exti" in data else 0]
        urls.append(data["base"] + raw[i * n:(i + 1) * n].hex() + "." + ext)
    return urls


def test_page_is_self_contained(sample):
    html = render_task_html(sample.task, study_config(), BASE)
    parts = parse_page(html)
    assert html.startswith("<!DOCTYPE html>")
    for tag, attrs in parts.tags:
        assert not (tag == "script" and "src" in attrs), "no external scripts"
        assert tag != "link" or attrs.get("href", "").startswith("data:"), "no external styles"
        assert "src" not in attrs, f"no resource loads before the script runs: {tag} {attrs}"
    style = "".join(parts.raw["style"])
    assert "@import" not in style and "url(" not in style
    assert "http" not in html.replace(BASE, "").replace(HTML_QUESTION_NS, "")


def test_packed_keys_give_every_image_url_in_screen_order(sample):
    data = task_data(render_task_html(sample.task, study_config(), BASE))
    expected = []
    for trial in sample.task.trials:
        refs = trial.references
        expected += [*refs.left, *refs.right, trial.queries.top, trial.queries.bottom]
    assert urls_from_data(data) == [BASE + key for key in expected]
    assert [t["n"] for t in data["trials"]] == [
        [len(t.references.left), len(t.references.right)] for t in sample.task.trials
    ]
    assert [t["id"] for t in data["trials"]] == [t.trial_id for t in sample.task.trials]


def test_full_length_keys_and_mixed_extensions_round_trip(tmp_path):
    sample = build_sample_task(tmp_path, practice=1, blocks=(("natural", 2),),
                               key_of=lambda data: hashlib.sha256(data).hexdigest() + ".png")
    trial = sample.task.trials[-1]
    jpg_key = trial.queries.bottom.replace(".png", ".jpg")
    trials = list(sample.task.trials)
    trials[-1] = trial.model_copy(update={"queries": Queries(top=trial.queries.top,
                                                             bottom=jpg_key)})
    task = sample.task.model_copy(update={"trials": trials})
    data = task_data(render_task_html(task, study_config(), BASE.rstrip("/")))
    urls = urls_from_data(data)
    assert urls[-1] == BASE + jpg_key, "the base URL gains its slash; the key keeps its type"
    assert urls[-2] == BASE + trial.queries.top


def test_only_practice_trials_carry_their_answer(sample):
    data = task_data(render_task_html(sample.task, study_config(), BASE))
    for public, item in zip(sample.task.trials, data["trials"], strict=True):
        if public.phase == "practice":
            assert item["answer"] == sample.max_position[public.trial_id]
        else:
            assert set(item) == {"id", "phase", "cond", "n"}
            assert item["phase"] == "test"


def test_no_word_in_tags_code_or_data_gives_away_max_min_or_catch(sample):
    """Only the words a worker reads may say such things ("about 12 minutes")."""
    html = render_task_html(sample.task, study_config(), BASE)
    parts = parse_page(html)
    for tag, attrs in parts.tags:
        for name, value in attrs.items():
            assert not TELLTALE_WORD.search(name + "=" + value), (tag, name, value)
    assert not TELLTALE_WORD.search("".join(parts.raw["json"]))
    for kind in ("script", "style"):
        words = code_words("".join(parts.raw[kind]))
        assert not [w for w in words if TELLTALE_WORD.match(w)], kind


def test_swapping_every_test_trials_queries_changes_only_the_packed_keys(sample):
    """Nothing on the page but the image keys depends on where the max query is."""
    swapped_trials = [
        t if t.phase == "practice" else t.model_copy(
            update={"queries": Queries(top=t.queries.bottom, bottom=t.queries.top)})
        for t in sample.task.trials
    ]
    swapped = sample.task.model_copy(update={"trials": swapped_trials})
    config = study_config()
    one, other = (render_task_html(t, config, BASE) for t in (sample.task, swapped))
    data_one, data_other = task_data(one), task_data(other)
    assert data_one["keys"] != data_other["keys"]
    assert one.replace(data_one["keys"], "KEYS") == other.replace(data_other["keys"], "KEYS")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feedback": Feedback(correct="top")}, "carries feedback"),
        ({"trial_id": "unit3-max-top"}, "contains 'max'"),
        ({"condition": "catch"}, "contains 'catch'"),
        ({"queries": Queries(top="max_query.png", bottom="a" * 32 + ".png")},
         "not a content-hash key"),
    ],
)
def test_a_task_that_would_leak_is_refused(sample, change, message):
    trials = list(sample.task.trials)
    index = next(i for i, t in enumerate(trials) if t.phase == "test")
    trials[index] = trials[index].model_copy(update=change)
    task = sample.task.model_copy(update={"trials": trials})
    with pytest.raises(CrowdkitError, match=message):
        render_task_html(task, study_config(), BASE)


def test_every_text_is_escaped(sample):
    evil = "<script>alert(1)</script>"
    config = study_config(page=f'instructions = "{evil}"\n[page.texts]\nmain = "{evil} & more"')
    config.hit.title = f"Title {evil}"
    trials = list(sample.task.trials)
    trials[0] = trials[0].model_copy(update={"trial_id": "a</script><script>alert(2)"})
    task = sample.task.model_copy(update={"trials": trials})
    html = render_task_html(task, config, BASE)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 2, "only the data and the page script"
    assert task_data(html)["trials"][0]["id"] == "a</script><script>alert(2)"


def test_texts_and_timings_come_from_study_toml(sample):
    config = study_config(
        page='instructions = "Look closely.\\n\\nThen choose."\n'
        "practice_max_attempts = 5\nfeedback_ms = 900\ninter_trial_ms = 250\n"
        "min_window_width = 1100\nmin_window_height = 700\n"
        '[page.texts]\nblock_break = "Stretch your legs."\npreview = "Short visual task."'
    )
    html = render_task_html(sample.task, config, BASE)
    assert "<p>Look closely.</p><p>Then choose.</p>" in html
    assert "A neural network is a computer program" not in html, "replaced, not added to"
    assert "Stretch your legs." in html and "Short visual task." in html
    assert "about 12 minutes" in html and "$1.25" in html
    assert "1100 &times; 700 pixels" in html
    settings = task_data(html)["settings"]
    assert settings == {"attempts": 5, "feedback_ms": 900, "iti_ms": 250,
                        "window": [1100, 700], "questionnaire": True}


def test_unknown_text_key_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"\[page\] texts.practise: unknown key.*'practice'"):
        study_config(page='[page.texts]\npractise = "x"')


def test_default_wording_follows_the_design(tmp_path):
    config = study_config(design='reference_mode = "max-only"\nmax_side = "left"')
    sample = build_sample_task(tmp_path, max_only=True, max_side="left",
                               blocks=(("natural", 2), ("none", 2)))
    html = render_task_html(sample.task, config, BASE)
    assert "on the <b>left</b> side make it respond <b>strongly</b>" in html
    assert "respond <b>weakly</b>" not in html, "max-only: no weak side to describe"
    assert "Some trials show no example images" in html
    assert [t["n"] for t in task_data(html)["trials"]][-1] == [0, 0]


def test_a_study_template_folder_overrides_file_by_file(sample, tmp_path):
    folder = tmp_path / "my_templates"
    folder.mkdir()
    (folder / "instructions.html").write_text("<p>Our own words for {{ n_tests }} trials.</p>")
    config = study_config(page='templates_dir = "my_templates"')
    html = render_task_html(sample.task, config, BASE, study_root=tmp_path)
    assert "<p>Our own words for 6 trials.</p>" in html
    assert 'id="query-top"' in html, "the other templates still come from the package"

    (folder / "instructions.html").write_text("{{ '<b>' }} {% if %}")
    with pytest.raises(CrowdkitError, match=r"instructions.html, line 1"):
        render_task_html(sample.task, config, BASE, study_root=tmp_path)
    (folder / "instructions.html").write_text("{{ '<b>bold</b>' }}")
    assert "&lt;b&gt;bold&lt;/b&gt;" in render_task_html(sample.task, config, BASE,
                                                        study_root=tmp_path)
    with pytest.raises(ConfigError, match=r"\[page\] templates_dir: no folder"):
        render_task_html(sample.task, config, BASE, study_root=tmp_path / "elsewhere")


def test_html_question_wraps_the_page_byte_for_byte():
    html = '<!DOCTYPE html><p>a ]]> b</p><script>if (a[b[0]]>1) x = "é";</script>'
    xml = html_question_xml(html)
    root = ET.fromstring(xml)
    ns = {"q": HTML_QUESTION_NS}
    assert root.tag == f"{{{HTML_QUESTION_NS}}}HTMLQuestion"
    assert root.find("q:HTMLContent", ns).text == html
    assert root.find("q:FrameHeight", ns).text == "0"


def test_question_size_limit_is_mturks_64_kb():
    fits = "x" * QUESTION_LIMIT_BYTES
    assert check_question_size(fits, "t0001") == QUESTION_LIMIT_BYTES
    with pytest.raises(CrowdkitError) as err:
        check_question_size(fits + "é", "t0001")
    message = str(err.value)
    assert "task t0001" in message and "65,537 bytes" in message
    assert "trials_per_task" in message and "n_references" in message


def test_a_forty_trial_hit_with_nine_plus_nine_references_fits_comfortably(tmp_path):
    sample = build_sample_task(tmp_path, practice=2, blocks=(("natural", 20), ("synthetic", 20)),
                               catch_positions=(5, 15, 25, 35), image_size=8)
    xml = render_question(sample.task, study_config(), BASE)
    size = len(xml.encode())
    print(f"40 test + 2 practice trials, 9+9 references: {size:,} bytes")
    assert size < 52_000, f"{size} bytes leaves under 12 KB of MTurk's 64 KB"


def test_an_oversize_hit_says_what_to_reduce(tmp_path):
    sample = build_sample_task(tmp_path, practice=0, blocks=(("natural", 120),),
                               catch_positions=(), image_size=8)
    with pytest.raises(CrowdkitError, match=r"task t0007: the HIT question is [\d,]+ bytes"):
        render_question(sample.task, study_config(), BASE)


def test_expected_time_reads_naturally():
    assert describe_duration(900) == "about 15 minutes"
    assert describe_duration(60) == "about 1 minute"
    assert describe_duration(20) == "about 1 minute"
    assert describe_duration(5400) == "about 1 hour 30 minutes"
    assert describe_duration(7200) == "about 2 hours"


# --- the preview server, over plain HTTP -----------------------------------------------


def fetch(url: str, data: bytes | None = None) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def valid_payload(task: PublicTask, feedback: str = "") -> dict:
    return {
        "schema_version": 1,
        "task_id": task.task_id,
        "trials": [{"trial_id": t.trial_id, "response": "top", "confidence": 2,
                    "rt_ms": 812.5, "round": 1} for t in task.trials],
        "practice_rounds": 1,
        "timing": {"instructions_ms": 30000, "total_ms": 400000},
        "questionnaire": {"cnn_experience": 1, "fv_experience": 0, "feedback": feedback},
        "client": {"window_width": 1280, "window_height": 800, "user_agent": "test"},
    }


def post_form(url: str, fields: dict[str, str]) -> tuple[int, str, bytes]:
    return fetch(url, urlencode(fields).encode())


def test_preview_server_serves_page_and_images_and_shows_the_submission(sample):
    with PreviewServer(sample.task, study_config(), sample.images) as server:
        status, kind, body = fetch(server.worker_url)
        assert status == 200 and kind.startswith("text/html")
        assert f"{server.base_url}/images/" in body.decode()

        key = sample.task.trials[0].queries.top
        status, kind, body = fetch(f"{server.base_url}/images/{key}")
        assert (status, kind) == (200, "image/png")
        assert body == sample.images[key].read_bytes()
        assert fetch(f"{server.base_url}/images/{'0' * 32}.png")[0] == 404
        assert fetch(f"{server.base_url}/images/..%2Fstudy.toml")[0] == 404

        submit = f"{server.base_url}/mturk/externalSubmit"
        payload = valid_payload(sample.task, feedback="<script>alert(1)</script>")
        status, _, body = post_form(submit, {"assignmentId": FAKE_ASSIGNMENT_ID,
                                             "data": json.dumps(payload)})
        page = body.decode()
        assert status == 200 and "Submission received (not sent anywhere)" in page
        assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
        assert server.submissions[-1].payload.questionnaire.cnn_experience == 1
        assert server.submissions[-1].form["assignmentId"] == FAKE_ASSIGNMENT_ID

        payload["trials"][0]["confidence"] = 4
        status, _, body = post_form(submit, {"assignmentId": FAKE_ASSIGNMENT_ID,
                                             "data": json.dumps(payload)})
        assert status == 400 and "trials.0.confidence" in body.decode()
        assert server.submissions[-1].payload is None
    assert server._httpd is None, "leaving the context stops the server"


def test_preview_server_reports_a_port_in_use(sample):
    with PreviewServer(sample.task, study_config(), sample.images) as first:
        clash = PreviewServer(sample.task, study_config(), sample.images, port=first.port)
        with pytest.raises(CrowdkitError, match=f"127.0.0.1:{first.port}.*--port"):
            clash.__enter__()


def test_preview_server_renders_with_the_study_templates(sample, tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "instructions.html").write_text("<p>Study words.</p>")
    config = study_config(page='templates_dir = "t"')
    with PreviewServer(sample.task, config, sample.images, study_root=tmp_path) as server:
        assert "<p>Study words.</p>" in fetch(server.worker_url)[2].decode()


def test_templates_ship_as_package_data():
    import tomllib

    import hit_templates

    folder = Path(next(iter(hit_templates.__path__)))
    pyproject = tomllib.loads((folder.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["hit_templates"]
    shipped = {p.name for pattern in patterns for p in folder.glob(pattern)}
    assert {"task.html", "task.css", "task.js", "instructions.html", "example.html",
            "messages.html"} <= shipped


def test_preview_serves_a_task_of_the_studys_own_design(tmp_path):
    from crowdkit.preview import preview_server
    from crowdkit.study import load_study
    from tests.factories import make_study

    study = load_study(make_study(tmp_path / "study", tasks=3))
    with preview_server(study, task_index=2, port=0) as server:
        assert server.task.task_id == "t0002"
        data = task_data(fetch(server.worker_url)[2].decode())
        assert data["task"] == "t0002"
        urls = urls_from_data(data)
        for url in sorted(set(urls))[:5]:
            status, kind, body = fetch(url)
            assert (status, kind) == (200, "image/png")
            assert body == server.images[url.rsplit("/", 1)[1]].read_bytes()
    with pytest.raises(CrowdkitError, match="--task 3: the design has tasks 0 to 2"):
        preview_server(study, task_index=3, port=0)


def test_without_the_questionnaire_the_page_only_asks_to_submit(sample):
    html = render_task_html(sample.task, study_config(page="questionnaire = false"), BASE)
    assert 'type="radio"' not in html and 'id="comments"' not in html
    assert 'id="submit"' in html
    assert task_data(html)["settings"]["questionnaire"] is False
