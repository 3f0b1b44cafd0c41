"""A report for a paper: it states what the data are (study, target, model and weights,
submissions, HITs, assignments, exclusions by rule, money), speaks the paper's layer names,
draws proportions within [0, 1], marks rows from few participants, is written even when
everyone is excluded, and agrees with collect; the codebook and the stimuli gallery."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from crowdkit import analysis
from crowdkit.analysis.figures import _error
from crowdkit.analysis.tables import FEW_NOTE, format_accuracy
from crowdkit.gallery import write_gallery
from crowdkit.localturk import LocalTurk
from crowdkit.study import load_study
from tests.factories import make_manifest, make_study, mturk
from tests.test_analysis import many_main_rows, trials

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory):
    """A small study run on the local twin: 4 careful, 1 careless and 1 tampering
    participant, collected and reviewed (so money has been spent)."""
    from crowdkit.collect import collect
    from crowdkit.publish import publish
    from crowdkit.review import review
    from crowdkit.simulate import SimulationSettings, simulate
    from crowdkit.store import LocalStore

    tmp = tmp_path_factory.mktemp("facts")
    root = make_study(tmp / "s", tasks=6)
    with LocalTurk(tmp / "t.db", port=0) as service:
        with (root / "study.toml").open("a") as fh:
            fh.write(f'\n[mturk]\nlocal_endpoint = "{service.endpoint_url}"\n'
                     '[quality]\nmin_total_time = "1s"\nmin_instruction_time = "1s"\n')
        study = load_study(root)
        platform = mturk(study, service.boto3_client())
        publish(study, platform, store=LocalStore(service.files_dir, service.base_url))
        simulate(study, SimulationSettings(participants=6, careless=1, fraudulent=1, seed=3),
                 endpoint=service.base_url)
        result = collect(study, platform, warn_auto_approval=False)
        review(study, platform)
        collect(study, platform, warn_auto_approval=False)  # statuses after the review
    return study, result


def test_the_report_states_what_the_data_are(collected):
    study, _ = collected
    result = analysis.analyze_file(study.root)
    facts = result.facts
    assert (facts.study, facts.targets) == ("teststudy", ["local"])
    assert (facts.model, facts.random_weights) == ("test", True)
    assert (facts.hits, facts.assignments, facts.participants) == (6, 6, 5)
    assert facts.first_submission and facts.last_submission
    assert facts.first_submission <= facts.last_submission
    # approve-unless-fraud: 5 approved at $0.50 + MTurk's 20 %; the tampered one rejected
    assert facts.spent == Decimal("3.00") and facts.pending == Decimal("0.00")
    notes = " ".join(result.notes)
    assert "RANDOM weights" in notes and "mean nothing for science" in notes
    assert "local target" in notes
    report = analysis.write_report(result, study.report_dir)
    html = report.read_text()
    assert "What the data are" in html and "study teststudy; target local" in html
    assert "model test, weights" in html and "money: $3.00 spent" in html
    assert "RANDOM weights" in html
    as_json = result.to_json()["facts"]
    assert as_json["spent"] == "3.00" and as_json["hits"] == 6


def test_collect_and_analyze_count_exclusions_alike_and_name_the_difference(collected):
    study, collected_result = collected
    records = collected_result.dataset.records
    invalid = sum(1 for r in records if not r.parsed.valid)
    excluded = sum(1 for r in records if r.excluded)
    assert invalid == 1 and excluded >= 2  # the tampered answer, the careless one
    facts = analysis.analyze_file(study.root).facts
    assert (facts.invalid, facts.excluded_assignments) == (invalid, excluded)
    assert sum(facts.exclusions.values()) >= excluded
    assert facts.exclusions.get("valid_answer") == 1
    result = analysis.analyze_file(study.root)
    [note] = [n for n in result.notes if "invalid answers" in n]
    assert note.startswith(f"{invalid} of collect's {excluded} excluded assignments are "
                           "invalid answers, which have no trial rows")


def test_layers_are_the_papers_with_the_branch_to_split_by():
    modules = ["mixed3a_3x3_pre_relu_conv", "mixed4a_pool_reduce_pre_relu_conv"]
    rows = many_main_rows(*((f"p{i}", "natural", 3, 1) for i in range(6)))
    data = trials(rows, layer=[modules[i % 2] for i in range(len(rows))])
    assert set(data["layer"]) == {"3a", "4a"} and set(data["branch"]) == {"3x3", "pool"}
    assert set(data["module"]) == set(modules)
    result = analysis.analyze(data, by=["branch"])
    assert list(result.by_layer["layer"]) == ["3a", "4a"]
    assert set(result.summary["branch"]) == {"all", "3x3", "pool"}
    other = trials(rows, layer=["layer3.1.conv2"] * len(rows))  # not InceptionV1's
    assert set(other["layer"]) == {"layer3.1.conv2"} and "branch" not in other


def test_proportions_are_drawn_within_0_and_1_and_reported_unclipped():
    row = pd.DataFrame([{"accuracy": 0.875, "ci95_low": 0.63, "ci95_high": 1.12,
                         "n_participants": 2, "n_trials": 8}])
    below, above = _error(row, "accuracy")[:, 0]
    assert below == pytest.approx(0.245) and above == pytest.approx(0.125)  # up to 1.0
    shown = format_accuracy(row.assign(condition="natural"))
    assert shown.loc[0, "95 % CI"] == "[0.630, 1.120]"  # the paper's number, as computed


def test_rows_from_few_participants_are_marked_in_tables_and_figures(tmp_path):
    few = trials(many_main_rows(("p1", "natural", 3, 1), ("p2", "natural", 4, 0)))
    result = analysis.analyze(few)
    assert analysis.text_tables(result)[0][1].loc[0, "accuracy"].endswith("†")
    assert FEW_NOTE in analysis.terminal_text(result)
    figure = analysis.figures.figure_accuracy_by_condition(result, tmp_path)
    assert figure is not None and "Hollow: fewer than 5 participants" in figure.caption
    assert "clipped to [0, 1]" in figure.caption
    many = trials(many_main_rows(*((f"p{i}", "natural", 3, 1) for i in range(6))))
    assert not analysis.text_tables(analysis.analyze(many))[0][1].loc[0, "accuracy"].endswith(
        "†")


def test_when_everyone_is_excluded_the_rules_are_named_and_the_report_written(tmp_path):
    rows = many_main_rows(("p1", "natural", 3, 1), ("p2", "synthetic", 2, 2))
    data = pd.DataFrame(rows, columns=["participant_id", "condition", "phase", "correct"])
    data["excluded"] = True
    data["exclusion_reasons"] = ["catch_accuracy;total_time" if p == "p1" else "total_time"
                                 for p in data["participant_id"]]
    source = tmp_path / "trials.csv"
    data.to_csv(source, index=False)
    done = subprocess.run([sys.executable, "-m", "crowdkit", "analyze", str(source), "--out",
                           str(tmp_path / "report")], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ("warning: every participant is excluded (2; by rule: catch_accuracy: 1, "
            "total_time: 2)") in done.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert "every participant is excluded" in html and "total_time: 2" in html


def test_collect_writes_a_codebook_of_every_column_of_every_export(collected):
    study, _ = collected
    folder = study.target_data_dir("local")
    text = (folder / "codebook.md").read_text()
    for name in ("trials.csv", "participants.csv"):
        columns = pd.read_csv(folder / name, nrows=0).columns
        for column in columns:
            line = next((li for li in text.splitlines() if li.startswith(f"| `{column}` |")),
                        None)
            assert line is not None, (name, column)
            assert "a column of one of the study's trial types" not in line, column
    assert "| `phase` | string |" in text and "`catch`, `main`, `practice`" in text
    import json

    book = json.loads((folder / "codebook.json").read_text())
    assert [f["files"] for f in book["files"]] == ["trials.parquet, trials.csv",
                                                   "participants.csv"]


def test_the_codebook_never_copies_what_participants_typed_or_who_they_are():
    from crowdkit.collect.codebook import codebook, codebook_markdown

    trials = pd.DataFrame({"phase": pd.Series(["main", "catch|x"], dtype="string"),
                           "participant_id": ["p0123456789abcdef", "pfedcba9876543210"],
                           "correct": [True, False]})
    participants = pd.DataFrame({"feedback": ["a@b.c | <img src=x onerror=alert(1)>\nnext",
                                              "fine"],
                                 "assignment_id": ["A1", "A2"]})
    text = codebook_markdown(codebook(trials, participants))
    assert "a@b.c" not in text and "onerror" not in text
    assert "p0123456789abcdef" not in text and "`A1`" not in text
    assert "`catch\\|x`, `main`" in text and "`False`, `True`" in text
    assert all(line.count(" | ") == 3 for line in text.splitlines() if line.startswith("| `"))


def test_the_gallery_shows_every_unit_with_its_warnings(tmp_path):
    manifest = make_manifest(tmp_path / "stimuli", n_units=3)  # random weights, equal FVs
    page = write_gallery(tmp_path / "stimuli" / "manifest.json")
    html = page.read_text()
    assert page == tmp_path / "stimuli" / "gallery.html"
    assert 'id="random-weights"' in html
    for unit in manifest.units:
        assert f'id="unit-{unit.id}"' in html
    assert html.count('class="warning">unit ') == 3  # each unit's FVs do not separate
    sources = [part.split('"')[0] for part in html.split('src="')[1:]]
    assert sources and all((tmp_path / "stimuli" / src).is_file() for src in sources)


def test_crowdkit_stimuli_writes_the_gallery(tmp_path):
    from tests.test_stimgen_pipeline import make_study_dir

    root = make_study_dir(tmp_path / "study")
    done = subprocess.run([sys.executable, "-m", "crowdkit", "stimuli", str(root),
                           "--no-estimate", "--no-progress"], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    gallery = root / "stimuli" / "gallery.html"
    assert f"gallery: {gallery}" in done.stdout
    assert gallery.read_text().count('class="sheet"') == 3  # the contact sheets


def test_the_model_facts_survive_a_missing_stimulus_file(tmp_path):
    """Data analysed where some stimuli are not (another machine) still say what made them,
    and so still warn that random weights mean nothing for science."""
    from crowdkit.analysis.facts import study_facts

    root = make_study(tmp_path / "s")
    study = load_study(root)
    next(study.stimuli_dir.rglob("*.png")).unlink()
    (root / "data").mkdir(exist_ok=True)
    path = root / "data" / "trials.csv"
    rows = pd.DataFrame({"participant_id": ["p1"], "condition": ["natural"],
                         "phase": ["main"], "correct": [True]})
    rows.to_csv(path, index=False)
    facts = study_facts(rows, path)
    assert facts.random_weights is True and facts.model
