"""The `crowdkit` command line: one short function per command.

Commands load and validate study.toml first, then call a library function. Heavy imports
(torch, pandas, boto3, matplotlib) happen inside the commands, so `--help` stays fast.
Errors the user can fix (CrowdkitError) print one line each and exit non-zero.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crowdkit.errors import CrowdkitError

app = typer.Typer(
    name="crowdkit",
    help="Run human psychophysics studies of CNN explanations on Mechanical Turk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

StudyDir = Annotated[Path, typer.Argument(help="The study directory (holds study.toml).")]


def _study(directory: Path):
    from crowdkit.study import load_study

    return load_study(directory)


@app.command()
def init(
    directory: StudyDir,
    example: Annotated[
        str, typer.Option(help="The example to start from: quickstart or iclr2021-exp1.")
    ] = "quickstart",
) -> None:
    """Create a study directory with a commented study.toml from an example."""
    from crowdkit.examples import init_study

    path = init_study(directory, example)
    typer.echo(f"wrote {path}; edit it, then run `crowdkit stimuli {directory}`")


@app.command()
def stimuli(
    directory: StudyDir = Path("."),
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu, cuda or cuda:N (default: [stimuli] device, auto)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Render natural exemplars and feature visualizations per [stimuli] in study.toml."""
    from stimgen import render_study_stimuli

    result = render_study_stimuli(_study(directory), device=device, progress=progress)
    for line in result.summary_lines():
        typer.echo(line)


@app.command()
def design(directory: StudyDir = Path(".")) -> None:
    """Design the tasks from stimuli/manifest.json into the ledger, and summarise the balance."""
    from crowdkit.design import design_study

    summary = design_study(_study(directory))
    typer.echo(summary)


@app.command()
def preview(
    directory: StudyDir = Path("."),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8766,
    task: Annotated[int, typer.Option(help="Which task of the design to show (from 0).")] = 0,
) -> None:
    """Serve one HIT locally to try it in a browser; the submission is shown, not sent."""
    from crowdkit.preview import preview_server

    with preview_server(_study(directory), task_index=task, port=port) as server:
        typer.echo(f"previewing task {server.task.task_id} at {server.base_url}/ (Ctrl+C stops)")
        typer.echo(f"  as a worker who accepted it: {server.worker_url}")
        typer.echo(f"  as MTurk's preview:           {server.preview_url}")
        typer.echo(f"  {server.image_count} images; the HIT question is "
                   f"{server.question_bytes:,} bytes of MTurk's 65,535")
        server.wait()


TargetOption = Annotated[
    str | None,
    typer.Option("--target", help="local (default), sandbox or live; default: [mturk] target."),
]


def _ask(question: str) -> bool:
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:  # end of input: the answer is no
        typer.echo("", err=True)
        return False


@app.command()
def publish(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Render every HIT into DIR/dry-run/ and price it; call nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before spending money.")] = False,
    apply_bucket_policy: Annotated[bool, typer.Option(
        "--apply-bucket-policy",
        help="Grant public read (no listing) on this study's S3 prefix in the bucket policy.")
    ] = False,
) -> None:
    """Upload stimuli and create one HIT per task (resumable: just run it again)."""
    from crowdkit.publish import publish as publish_study

    result = publish_study(_study(directory), target=target, dry_run=dry_run, yes=yes,
                           confirm=_ask, apply_bucket_policy=apply_bucket_policy,
                           echo=typer.echo)
    typer.echo(result.summary())


@app.command()
def status(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Assignments, money spent and committed, and time left, per HIT and in total."""
    import json

    from crowdkit.status import print_status, study_status

    result = study_status(_study(directory), target=target)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        print_status(result, echo=typer.echo)


@app.command()
def collect(
    directory: StudyDir = Path("."),
    watch: Annotated[bool, typer.Option(
        "--watch", help="Keep polling, with progress, until every HIT is done.")] = False,
    interval: Annotated[float, typer.Option(
        help="Seconds between polls with --watch.", min=1)] = 30,
) -> None:
    """Store answers verbatim, apply the quality rules, write data/trials.* and participants."""
    from crowdkit.collect import collect as collect_study
    from crowdkit.turk import client_factory

    study = _study(directory)
    result = collect_study(study, client_factory(study), watch=watch, interval=interval,
                           echo=typer.echo)
    typer.echo(result.summary())


@app.command()
def review(
    directory: StudyDir = Path("."),
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan; approve, reject and pay nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before acting.")] = False,
) -> None:
    """Approve, reject and bonus per [review] policy; never twice (safe to re-run)."""
    from crowdkit.review import review as review_study
    from crowdkit.turk import client_factory

    study = _study(directory)

    def confirm(plan) -> bool:
        return yes or _ask("go ahead?")

    result = review_study(study, client_factory(study), dry_run=dry_run, confirm=confirm,
                          echo=typer.echo)
    typer.echo("dry run: nothing was done" if dry_run else
               result.summary() if result else "nothing was done")


@app.command()
def analyze(
    source: Annotated[Path, typer.Argument(help="A study directory or a trials CSV/Parquet.")],
    by: Annotated[
        list[str] | None,
        typer.Option(help="Also split accuracy by these columns, e.g. layer,n_references."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of tables.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write figures and report.html here (a study's default: DIR/report)."),
    ] = None,
) -> None:
    """Accuracy per condition with 95 % CIs, comparisons, figures and a self-contained report."""
    import json

    from crowdkit import analysis

    if source.is_dir():
        out = out or _study(source).report_dir
    result = analysis.analyze_file(source, by)
    report = analysis.write_report(result, out) if out else None
    if as_json:
        typer.echo(json.dumps(result.to_json(report), allow_nan=False))
    else:
        from rich.console import Console
        Console(soft_wrap=True).print(analysis.terminal_output(result, report))


@app.command()
def expire(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Expire this study's open HITs (never other HITs in the account)."""
    from crowdkit.status import expire as expire_hits

    expire_hits(_study(directory), target=target, yes=yes, confirm=_ask, echo=typer.echo)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    db: Annotated[
        Path | None, typer.Option(help="SQLite state file [default: ~/.crowdkit/localturk.db].")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0: the whole LAN).")] = (
        "127.0.0.1"
    ),
    files_dir: Annotated[
        Path | None, typer.Option(help="Folder served under /files/ [default: next to --db].")
    ] = None,
    balance: Annotated[str, typer.Option(help="Starting balance of a new database, USD.")] = (
        "10000.00"
    ),
    throttle_rate: Annotated[float, typer.Option(help="Share of API calls throttled.")] = 0.0,
    fault_rate: Annotated[float, typer.Option(help="Share of API calls failing with 500.")] = 0.0,
    lost_response_rate: Annotated[
        float, typer.Option(help="Share of API calls done but answered with 500.")
    ] = 0.0,
    latency_ms: Annotated[int, typer.Option(help="Delay added to every API call.")] = 0,
    verbose: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Run the local MTurk-compatible service: requester API and worker site."""
    from crowdkit.errors import ConfigError
    from crowdkit.localturk import FaultConfig, LocalTurk, default_db_path

    try:
        fault = FaultConfig(throttle_rate=throttle_rate, fault_rate=fault_rate,
                            lost_response_rate=lost_response_rate, latency_s=latency_ms / 1000)
    except ValueError as exc:
        raise ConfigError(f"fault options: {exc}") from exc
    db = db or default_db_path()
    turk = LocalTurk(db, port=port, files_dir=files_dir, fault=fault, host=host,
                     starting_balance=balance, verbose=verbose)
    with turk:
        typer.echo(f"localturk requester API: {turk.endpoint_url}  (boto3 endpoint_url)")
        typer.echo(f"localturk worker site:   {turk.worker_url}")
        typer.echo(f"state: {db}; files: {turk.files_dir}; Ctrl-C stops")
        turk.wait()


@app.command()
def simulate(
    directory: StudyDir = Path("."),
    participants: Annotated[int, typer.Option(help="How many simulated workers.", min=1)] = 10,
    accuracy_natural: Annotated[float, typer.Option(min=0, max=1)] = 0.9,
    accuracy_synthetic: Annotated[float, typer.Option(min=0, max=1)] = 0.8,
    accuracy_none: Annotated[float, typer.Option(min=0, max=1)] = 0.5,
    catch_accuracy: Annotated[float, typer.Option(min=0, max=1)] = 0.97,
    careless: Annotated[int, typer.Option(
        help="How many answer carelessly (same side, too fast, failing catch trials).",
        min=0)] = 0,
    fraudulent: Annotated[int, typer.Option(
        help="How many submit tampered payloads.", min=0)] = 0,
    seed: int = 0,
    endpoint: Annotated[str | None, typer.Option(
        help="The local service; default: [mturk] local_endpoint.")] = None,
) -> None:
    """Simulated participants answer the study's local HITs over HTTP."""
    from crowdkit.simulate import SimulationSettings
    from crowdkit.simulate import simulate as simulate_study

    settings = SimulationSettings(
        participants=participants, careless=careless, fraudulent=fraudulent, seed=seed,
        catch_accuracy=catch_accuracy,
        accuracy={"natural": accuracy_natural, "synthetic": accuracy_synthetic,
                  "none": accuracy_none})
    typer.echo(simulate_study(_study(directory), settings, endpoint=endpoint).summary())


@app.command()
def demo(
    directory: StudyDir = Path("demo-study"),
    participants: Annotated[int, typer.Option(help="Simulated participants.", min=1)] = 8,
    small: Annotated[bool, typer.Option(
        "--small", help="A smaller study (fewer units, steps, trials) for a quick check.")] = False,
    port: Annotated[int | None, typer.Option(
        help="Port of the in-process local service (default: [mturk] local_endpoint's).")] = None,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Keep the local service running to take a HIT yourself.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The whole loop offline on a CPU: stimuli, publish, simulated workers, collect, analyze."""
    from crowdkit.demo import run_demo

    run_demo(directory, participants=participants, small=small, port=port, serve=serve,
             progress=progress, echo=typer.echo)


def main() -> None:
    """Entry point: run the app, turning user errors into one line each."""
    try:
        app()
    except CrowdkitError as exc:
        for line in exc.lines:
            typer.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
