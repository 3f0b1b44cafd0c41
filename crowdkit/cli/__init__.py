"""The `crowdkit` command line: one short function per command.

Commands load and validate study.toml first, then call a library function and render what
it returns (crowdkit.cli.render). Heavy imports (torch, pandas, boto3, matplotlib) happen
inside the commands, so `--help` stays fast. Errors the user can fix (CrowdkitError) print
one line each and exit non-zero.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer import _click as click  # typer >= 0.26 carries its own click
from typer.core import TyperGroup

from crowdkit.cli import machine, render
from crowdkit.errors import ConfigError, CrowdkitError, NotConfirmed

if TYPE_CHECKING:
    from crowdkit.platforms.base import Platform
    from crowdkit.study import Study

class _FullSummaries(TyperGroup):
    """`crowdkit --help` lists each command with its whole summary, never cut at "...".

    Click shortens a command's first paragraph to fit one line; a researcher choosing a
    command needs all of it, so long summaries wrap instead.
    """

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                summary = command.short_help or (command.help or "").split("\n\n")[0]
                rows.append((name, " ".join(summary.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="crowdkit",
    help="Run human psychophysics studies of CNN explanations on Mechanical Turk.",
    cls=_FullSummaries,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crowdkit")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "dev"


def _show_version(value: bool) -> None:
    if value:
        render.echo(f"crowdkit {_version()}")
        raise typer.Exit()


# What a command keeps running until it ends (an embedded local service); closed when the
# command's context closes, however it ends.
_RESOURCES = ExitStack()


@app.callback()
def _options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", help="Print crowdkit's version and exit.", is_eager=True,
        callback=_show_version)] = False,
) -> None:
    """Run human psychophysics studies of CNN explanations on Mechanical Turk."""
    ctx.call_on_close(_RESOURCES.close)

StudyDir = Annotated[Path, typer.Argument(help="The study directory (holds study.toml).")]
TargetOption = Annotated[
    str | None,
    typer.Option("--target", help="local (default), sandbox or live; default: [mturk] target."),
]
ProgressOption = Annotated[bool, typer.Option(help="Show progress (bars on a terminal, "
                                                   "plain lines in a log).")]
RayOption = Annotated[str | None, typer.Option(
    "--ray", help="Run on a Ray cluster: local (start one here) or its address (default: "
                  "[compute] ray; unset: in this process).")]


def _study(directory: Path) -> Study:
    from crowdkit.study import load_study

    return load_study(directory)


def _platform(study: Study, target: str | None, *, calls: bool = True) -> Platform:
    """The study's platform; `calls=False` (a dry run) starts no local service for it."""
    from crowdkit.platforms.connect import open_platform

    platform = open_platform(study, target)
    if calls:
        _local_service(study, platform.target)
    return platform


def _local_service(study: Study, target: str, endpoint: str | None = None) -> None:
    """Run the local MTurk service until this command ends if the target needs one and
    nothing answers (crowdkit.platforms.mturk.embedded)."""
    if study.config.study.platform != "mturk":
        return
    from crowdkit.platforms.mturk.embedded import local_service_for_command

    note = _RESOURCES.enter_context(local_service_for_command(
        target, endpoint or study.config.mturk.local_endpoint))
    if note:
        render.aside(note)


@app.command()
def init(
    directory: StudyDir,
    example: Annotated[
        str, typer.Option(help="The example to start from: quickstart, iclr2021-exp1 (MTurk, "
                               "between participants) or iclr2021-exp1-lab (the lab design).")
    ] = "quickstart",
) -> None:
    """Create a study directory with a commented study.toml from an example."""
    from crowdkit.examples import create_study

    render.lines(create_study(directory, example).summary_lines())


@app.command()
def stimuli(
    directory: StudyDir = Path("."),
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu, cuda or cuda:N (default: [stimuli] device, auto)."),
    ] = None,
    estimate: Annotated[bool, typer.Option(
        help="Time a few steps first and say how long the whole rendering will take.")
    ] = True,
    ray: RayOption = None,
    progress: ProgressOption = True,
) -> None:
    """Render natural exemplars and feature visualizations per [stimuli] in study.toml."""
    from crowdkit.stimuli import render_study_stimuli
    from stimgen.job import StimuliInterrupted

    try:
        result = render_study_stimuli(_study(directory), device=device, estimate=estimate,
                                      progress=render.progress(progress),
                                      on_plan=render.stimuli_plan, ray=ray)
    except StimuliInterrupted as stopped:
        render.interrupted(stopped.kept, f"crowdkit stimuli {directory}")
    render.lines(result.summary_lines())
    render.warnings(result.warnings)


@app.command()
def design(directory: StudyDir = Path(".")) -> None:
    """Design the tasks from stimuli/manifest.json into the ledger, and summarise the balance."""
    from crowdkit.design import design_study

    render.echo(design_study(_study(directory)))


@app.command()
def preview(
    directory: StudyDir = Path("."),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8766,
    task: Annotated[int, typer.Option(help="Which task of the design to show (from 0).")] = 0,
) -> None:
    """Serve one HIT locally to try it in a browser; the submission is shown, not sent."""
    from crowdkit.preview import preview_server

    with preview_server(_study(directory), task_index=task, port=port) as server:
        render.lines([
            f"previewing task {server.task.task_id} at {server.base_url}/ (Ctrl+C stops)",
            f"  as a worker who accepted it: {server.worker_url}",
            f"  as MTurk's preview:           {server.preview_url}",
            f"  {server.image_count} images; the HIT question is "
            f"{server.question_bytes:,} bytes of MTurk's 65,535"])
        server.wait()


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
    progress: ProgressOption = True,
) -> None:
    """Upload stimuli and create one HIT per task (resumable: just run it again)."""
    from crowdkit.publish import publish as publish_study
    from crowdkit.publish import resolve_target

    study = _study(directory)
    platform = _platform(study, resolve_target(study, target), calls=not dry_run)
    result = publish_study(study, platform, dry_run=dry_run, yes=yes,
                           confirm=lambda q: render.confirm(q, "nothing was published"),
                           apply_bucket_policy=apply_bucket_policy,
                           progress=render.progress(progress), on_plan=render.lines)
    render.lines(result.notes)
    render.echo(result.summary())


@app.command()
def status(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Serve a live view on 127.0.0.1 that refreshes itself (Ctrl-C stops).")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the live view (0: any free port).")] = 8767,
    refresh: Annotated[float, typer.Option(
        help="Seconds between the live view's refreshes.", min=1)] = 10,
) -> None:
    """Assignments, money spent and committed, and time left, per HIT and in total."""
    import json

    from crowdkit.status import status_lines, status_table, study_status

    study = _study(directory)
    if serve:
        _serve_dashboard(study, _platform(study, target), port, refresh)
        return
    result = study_status(study, _platform(study, target))
    if as_json:
        render.echo(json.dumps(result.to_json()))
        return
    table = status_table(result)
    if table is not None:
        render.show(table)
    render.lines(status_lines(result))


def _serve_dashboard(study: Study, platform: Platform, port: int, refresh: float) -> None:
    from crowdkit.dashboard import serve_dashboard

    with serve_dashboard(study, platform, port=port, refresh_s=refresh) as dashboard:
        render.echo(f"live view of {study.name} ({platform.target}) at {dashboard.url} "
                    f"(refreshes every {refresh:g} s; Ctrl-C stops)")
        dashboard.wait()


@app.command()
def collect(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Keep polling, with progress, until every HIT is done.")] = False,
    interval: Annotated[float, typer.Option(
        help="Seconds between polls with --watch.", min=1)] = 30,
    progress: ProgressOption = True,
) -> None:
    """Store answers verbatim, apply the quality rules, write data/TARGET/trials.* and
    participants.csv."""
    from crowdkit.collect import collect as collect_study

    study = _study(directory)
    result = collect_study(study, _platform(study, target), watch=watch, interval=interval,
                           progress=render.progress(progress))
    render.warnings(result.warnings)
    render.echo(result.summary())
    _left_to_do(result.failures, f"crowdkit collect {directory}")


@app.command()
def review(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the plan; approve, reject and pay nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before acting.")] = False,
    progress: ProgressOption = True,
) -> None:
    """Approve, reject and bonus per [review] policy; never twice (safe to re-run)."""
    from crowdkit.review import ReviewPlan
    from crowdkit.review import review as review_study

    def show_plan(plan: ReviewPlan) -> None:
        render.warnings(plan.warnings)
        render.echo(plan.describe())

    study = _study(directory)
    result = review_study(study, _platform(study, target), dry_run=dry_run,
                          confirm=lambda plan: yes or render.confirm(
                              "go ahead?", "nothing was approved, rejected or paid"),
                          on_plan=show_plan, progress=render.progress(progress))
    if result is None:
        render.echo("dry run: nothing was done" if dry_run else "nothing was done")
        return
    render.warnings(result.failures)
    render.echo(result.summary())
    _left_to_do(result.failures, f"crowdkit review {directory}")


def _left_to_do(failures: list[str], command: str) -> None:
    """Exit non-zero, saying what is left, when calls failed after their retries."""
    from crowdkit.errors import Incomplete

    if failures:
        raise Incomplete(f"{len(failures)} of the calls failed after their retries; what "
                         f"succeeded is recorded: run `{command}` again to do the rest")


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
    target: Annotated[str | None, typer.Option(
        "--target", help="Whose data: local, sandbox or live (a study's default: [mturk] "
                         "target; a file's: its only target).")] = None,
    progress: ProgressOption = True,
) -> None:
    """Accuracy per condition with 95 % CIs, comparisons, figures and a self-contained report."""
    import json

    from crowdkit import analysis

    if source.is_dir():
        study = _study(source)
        out = out or study.report_dir
        target = target or study.config.mturk.target
    result = analysis.analyze_file(source, by, target=target)
    render.warnings(result.notes)
    report = None
    if out:
        report = analysis.write_report(result, out,
                                       progress=render.progress(progress and not as_json))
    if as_json:
        render.echo(json.dumps(result.to_json(report), allow_nan=False))
    else:
        render.show(analysis.terminal_output(result, report))


@app.command()
def expire(
    directory: StudyDir = Path("."),
    target: TargetOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Expire this study's open HITs (never other HITs in the account)."""
    from crowdkit.status import expire as expire_hits
    from crowdkit.status import open_hits
    from crowdkit.units import plural

    study = _study(directory)
    platform = _platform(study, target)
    if not study.db_path.exists() or not open_hits(study, platform.target):
        render.echo(f"{platform.target}: no open HITs of this study")
        return
    n = expire_hits(study, platform, yes=yes,
                    confirm=lambda q: render.confirm(q, "no HIT was expired"))
    render.echo(f"{platform.target}: expired {plural(n, 'HIT')} of study {study.name}")


@app.command()
def extend(
    directory: StudyDir = Path("."),
    by: Annotated[str, typer.Option(
        "--by", help="How much longer the HITs stay open, such as 2d or 12h.")] = "1d",
    target: TargetOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Keep this study's open HITs open longer (UpdateExpirationForHIT; resumable)."""
    from crowdkit.status import extend as extend_hits
    from crowdkit.units import parse_duration

    try:
        seconds = parse_duration(by)
    except ValueError as exc:
        raise ConfigError(f"--by: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"--by: expected a duration longer than 0s, got {by!r}")
    study = _study(directory)
    result = extend_hits(study, _platform(study, target), by_s=seconds, yes=yes,
                         confirm=lambda q: render.confirm(q, "no HIT was extended"))
    render.warnings(result.failures)
    render.echo(result.summary())
    _left_to_do(result.failures, f"crowdkit extend {directory}")


WorkersArgument = Annotated[list[str], typer.Argument(
    help="Participant ids from the exports (p + 16 hex digits) or worker ids.")]


@app.command()
def block(
    directory: StudyDir,
    workers: WorkersArgument,
    reason: Annotated[str, typer.Option(
        help="Why (kept by MTurk, never shown to the worker).")] = "",
    target: TargetOption = None,
) -> None:
    """Block workers from every HIT of this requester (CreateWorkerBlock); recorded."""
    from crowdkit.blocks import block_workers

    study = _study(directory)
    result = block_workers(study, _platform(study, target), workers, reason=reason)
    render.warnings(result.failures)
    render.echo(result.summary("blocked"))
    _left_to_do(result.failures, f"crowdkit block {directory} ...")


@app.command()
def unblock(
    directory: StudyDir,
    workers: WorkersArgument,
    reason: Annotated[str, typer.Option(help="Why (kept by MTurk).")] = "",
    target: TargetOption = None,
) -> None:
    """Lift blocks this study's review or `crowdkit block` made (DeleteWorkerBlock)."""
    from crowdkit.blocks import block_workers

    study = _study(directory)
    result = block_workers(study, _platform(study, target), workers, reason=reason,
                           blocked=False)
    render.warnings(result.failures)
    render.echo(result.summary("unblocked"))
    _left_to_do(result.failures, f"crowdkit unblock {directory} ...")


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
    notification_url: Annotated[
        str | None, typer.Option(help="POST every HIT event notification to this URL.")
    ] = None,
) -> None:
    """Run the local MTurk-compatible service: requester API and worker site."""
    from crowdkit.localturk import FaultConfig, LocalTurk, default_db_path

    try:
        fault = FaultConfig(throttle_rate=throttle_rate, fault_rate=fault_rate,
                            lost_response_rate=lost_response_rate, latency_s=latency_ms / 1000)
    except ValueError as exc:
        raise ConfigError(f"fault options: {exc}") from exc
    db = db or default_db_path()
    render.configure_logging(verbose)
    turk = LocalTurk(db, port=port, files_dir=files_dir, fault=fault, host=host,
                     starting_balance=balance, verbose=verbose,
                     notification_url=notification_url)
    with turk:
        render.lines([
            f"localturk requester API: {turk.endpoint_url}  (boto3 endpoint_url)",
            f"localturk worker site:   {turk.worker_url}",
            f"state: {db}; files: {turk.files_dir}; Ctrl-C stops"])
        turk.wait()


def _accuracies(values: list[str] | None) -> dict[str, float]:
    """`--accuracy natural=0.9 --accuracy synthetic=0.8` as a dict, each within [0, 1]."""
    out: dict[str, float] = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        try:
            p = float(number)
        except ValueError:
            p = -1.0
        if not sep or not name.strip() or not 0 <= p <= 1:
            raise ConfigError(f"--accuracy {value!r}: expected CONDITION=P with P from 0 to 1, "
                              "such as natural=0.9")
        out[name.strip()] = p
    return out


@app.command()
def simulate(
    directory: StudyDir = Path("."),
    participants: Annotated[int, typer.Option(help="How many simulated workers.", min=1)] = 10,
    accuracy: Annotated[list[str] | None, typer.Option(
        help="CONDITION=P: a careful participant's chance of a right answer in a condition "
             "(repeatable; default: the condition's own, natural 0.9, synthetic 0.8, "
             "none 0.5).")] = None,
    catch_accuracy: Annotated[float, typer.Option(
        help="A careful participant's chance of a right answer on a catch trial.",
        min=0, max=1)] = 0.97,
    careless: Annotated[int, typer.Option(
        help="How many answer carelessly (same side, too fast, failing catch trials).",
        min=0)] = 0,
    fraudulent: Annotated[int, typer.Option(
        help="How many submit tampered payloads.", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated crowd.")] = 0,
    endpoint: Annotated[str | None, typer.Option(
        help="The local service; default: [mturk] local_endpoint.")] = None,
    observer: Annotated[str | None, typer.Option(
        help="mis: answer each trial with the machine observer's probability of the right "
             "choice (run `crowdkit mis` first) instead of --accuracy.")] = None,
    lapse: Annotated[float, typer.Option(
        help="With --observer: the share of trials a participant guesses.", min=0, max=1)
    ] = 0.04,
    progress: ProgressOption = True,
) -> None:
    """Simulated participants answer the study's local HITs over HTTP."""
    from crowdkit.simulate import SimulationSettings
    from crowdkit.simulate import simulate as simulate_study

    settings = SimulationSettings(
        participants=participants, careless=careless, fraudulent=fraudulent, seed=seed,
        catch_accuracy=catch_accuracy, accuracy=_accuracies(accuracy), lapse=lapse)
    study = _study(directory)
    _local_service(study, "local", endpoint)
    result = simulate_study(study, settings, endpoint=endpoint,
                            progress=render.progress(progress), observer=observer)
    render.echo(result.summary())


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
    progress: ProgressOption = True,
) -> None:
    """The whole loop offline on a CPU: stimuli, publish, simulated workers, collect, analyze."""
    from crowdkit.demo import run_demo

    render.configure_logging()
    run_demo(directory, participants=participants, small=small, port=port, serve=serve,
             progress=render.progress(progress))


app.command()(machine.mis)
app.command()(machine.power)


def main() -> None:
    """Entry point: run the app, turning user errors into one line each."""
    try:
        app()
    except NotConfirmed as exc:  # the user's own answer, not an error
        typer.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except CrowdkitError as exc:
        for line in exc.lines:
            typer.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        # every command records what it finished (ledger, files, caches) and a re-run
        # continues from there (docs/architecture.md, "Nothing lost")
        typer.echo("interrupted; what was finished is kept: run the same command again to "
                   "continue where it stopped", err=True)
        sys.exit(130)
