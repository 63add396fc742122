"""``ns3``: one subcommand per pipeline stage, plus ``run`` for the whole pipeline.

Every stage command loads params.yaml (+ ``--profile`` overlay + ``--set key=value`` overrides), validates
it, and runs that stage's Prefect flow, which logs to MLflow. ``dvc repro`` calls these same commands.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer
import yaml

from pipelines.stages import STAGES

app = typer.Typer(
    help=(
        f"NaturalSpeech 3 pipeline: {' -> '.join(s.command for s in STAGES)}.\n\n"
        "Start with `ns3 run` (the whole pipeline on the embedded synthesized corpus). Each stage can also run on "
        "its own; `dvc repro` runs them incrementally. Knobs live in params.yaml."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
_state: dict = {}


def _prefect_defaults() -> None:
    # Offline-friendly Prefect: no telemetry, patient ephemeral-server start-up on small machines.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError as e:
            raise typer.BadParameter(f"--set {k.strip()}: {v!r} is not a YAML value ({e})") from None
    return out


def params():
    from ns3.config import ConfigError, load_params

    try:
        return load_params(_state.get("params"), _state.get("profile"), _state.get("overrides"))
    except ConfigError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2) from None


def _run_flow(name: str) -> None:
    _prefect_defaults()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from pipelines.pipeline import configured_flow

    p = params()
    # The heartbeat thread adds ~1 s to every flow and is only useful with a long-lived server.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = configured_flow(name, p)(p)
    typer.echo(json.dumps(result, indent=1, default=str))


@app.callback()
def main(
    params_file: Optional[Path] = typer.Option(None, "--params", help="params file (default: params.yaml in the project)"),
    profile: Optional[str] = typer.Option(None, "--profile", help="profile overlay from configs/<name>.yaml: mini | ci | paper"),
    set_: list[str] = typer.Option([], "--set", help="override one knob, e.g. --set shard.workers=4 (repeatable); "
                                   "--set profile=paper is --profile paper (the other --set values apply on top)"),
) -> None:
    _state.update(params=params_file, profile=profile, overrides=_parse_set(set_))


def _stage_command(name: str):
    def command() -> None:
        _run_flow(name)

    command.__name__ = name
    return command


def _mount_stage_commands() -> None:
    """One subcommand per registry stage (pipelines/stages.py), in pipeline order."""
    for s in STAGES:
        app.command(s.command, help=s.help)(_stage_command(s.name))


_mount_stage_commands()


@app.command()
def run(
    stages: list[str] = typer.Option([], "--stage", help="run only these stages (repeatable); default: all"),
    force: bool = typer.Option(False, help="run stages even when DVC says they are up to date"),
) -> None:
    """The whole pipeline as one Prefect flow under one MLflow parent run (skips what DVC says is up to date)."""
    _prefect_defaults()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from pipelines.pipeline import dvc_sees, pipeline_flow

    p = params()
    plain = dvc_sees(_state.get("params"), _state.get("profile"), _state.get("overrides"))
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = pipeline_flow(p, stages=stages or None, use_dvc=plain, force=force)
    typer.echo(json.dumps(result, indent=1))


@app.command()
def schedule(
    cron: Optional[str] = typer.Option(None, help='when to run, as cron, e.g. "0 3 * * 0" (Sundays 03:00)'),
    interval: Optional[float] = typer.Option(None, help="or every this many seconds (short cycles, tests)"),
    timezone: Optional[str] = typer.Option(None, help="IANA time zone of the schedule, e.g. Europe/Berlin (default UTC)"),
    stages: list[str] = typer.Option([], "--stage", help="run only these stages (repeatable); default: all"),
    name: str = typer.Option("retrain", help="deployment name (re-using one updates that deployment)"),
    work_pool: Optional[str] = typer.Option(None, help="register with this process work pool and return, for "
                                            "`prefect worker start --pool NAME`; default: serve here (blocks)"),
) -> None:
    """`ns3 run` on a schedule, as a Prefect deployment on a running Prefect server (PREFECT_API_URL).

    --params, --profile and --set become the deployment's parameters; each run loads them and runs like `ns3 run`.

    With plain params (params.yaml, its own profile, no --set) DVC skips the stages that are up to date."""
    from ns3.config import ConfigError
    from pipelines import schedule as sched

    try:
        when = sched.make_schedule(cron, interval, timezone)
        parameters = sched.deployment_parameters(_state.get("params"), _state.get("profile"),
                                                 _state.get("overrides"), stages)
        sched.require_server()
    except (ConfigError, sched.ScheduleError) as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2) from None
    project = Path(parameters["params_file"]).parent
    every = f"{cron} ({timezone or 'UTC'})" if cron else f"every {interval:g} s"
    typer.echo(f"deployment {sched.FLOW_NAME}/{name}: {every}, parameters {json.dumps(parameters)}")
    if work_pool is None:
        sched.serve(name, project, when, parameters)
        return
    try:
        sched.register(name, project, when, parameters, work_pool)
    except sched.ScheduleError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"registered with work pool {work_pool!r}; start a worker where {project} is reachable:\n"
               f"    prefect worker start --pool {work_pool}")


@app.command()
def ablations(
    experiment: str = typer.Option("ns3-ablations", help="MLflow experiment of the queue (its report pairs only these)"),
    codec_steps: Optional[int] = typer.Option(None, help="codec budget for the baseline and every variant (steps)"),
    diffusion_steps: Optional[int] = typer.Option(None, help="diffusion budget for all (steps)"),
    budget: list[str] = typer.Option([], help="more key=value overrides for all, e.g. synthesize.sentences_per_speaker=2"),
    only: list[str] = typer.Option([], help="run only these variants (repeatable), e.g. no-cfg"),
    dvc: bool = typer.Option(False, help="print the same variants as `dvc exp run --queue` commands instead"),
) -> None:
    """The paper's TTS ablations (Tables 3, 4, 11) as parameter variants, each re-running only what it changes,
    then the TTS report of that experiment (data/ablations/<experiment>/reports/tts)."""
    from evaluation.report.tts_ablations import queue_commands, reduced_budget_sets

    sets = reduced_budget_sets(codec_steps=codec_steps, diffusion_steps=diffusion_steps)
    # step budgets only: a busy machine then changes how long it takes, never what is trained
    sets.update({k.replace("max_steps", "max_minutes"): None for k in list(sets)})
    sets.update(_parse_set(budget))
    if dvc:
        import shlex

        from evaluation.report.tts_ablations import yaml_value

        sets["tracking.experiment"] = experiment
        base = [a for k, v in sets.items() for a in ("-S", f"{k}={yaml_value(v)}")]
        # The baseline runs in the workspace and is committed first: a queued experiment starts from the committed
        # dvc.lock, so each variant then re-runs only the stages its setting changes. Queued from a commit without
        # the baseline's lock, every variant would retrain everything from scratch (persistent outs are never
        # restored from DVC's run cache).
        typer.echo(shlex.join(["dvc", "exp", "run", "-n", "baseline", "-S", "variant=baseline", *base]))
        typer.echo("git add params.yaml dvc.lock metrics && git commit -m 'ablation baseline' && dvc push  # push: if a remote is set")
        for argv in queue_commands(extra_sets=sets):
            typer.echo(shlex.join(argv))
        typer.echo("dvc queue start && dvc queue status  # then: ns3 compare --experiment " + shlex.quote(experiment))
        return
    _prefect_defaults()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from pipelines.ablation_flow import ablations_flow

    params()  # validate first: a bad params file fails before any training
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = ablations_flow(_state.get("params") and str(_state["params"]), _state.get("profile"), experiment,
                                sets, only)
    typer.echo(json.dumps(result, indent=1))


@app.command()
def compare(
    experiment: Optional[str] = typer.Option(None, help="MLflow experiment (default: params tracking.experiment)"),
    profile: Optional[str] = typer.Option(None, help="compare this profile's runs only (default: the params' profile)"),
    tag: list[str] = typer.Option([], help="tag filter key=value (repeatable); ns3.stage=<stage> picks the compared "
                                  "stage(s), default evaluate_codec and evaluate_tts"),
    baseline: Optional[str] = typer.Option(None, help="the variant deltas are taken against (default: report.baseline)"),
    metric: list[str] = typer.Option([], help="metric columns as fnmatch patterns over the MLflow keys, e.g. "
                                     "'tts/librispeech/*' (repeatable; default: the metrics the paper's ablations name)"),
    run_ids: list[str] = typer.Option([], "--run", help="use this run (id or unique prefix) for its variant and "
                                      "stage instead of the newest (repeatable)"),
    include_unfinished: bool = typer.Option(False, help="also read failed and still-running runs"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="the page (default: <reports>/compare/"
                                          "index.html); compare.csv is written beside it"),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store (default: MLFLOW_TRACKING_URI, else mlflow.db)"),
) -> None:
    """Ablation dashboard: every variant's MLflow runs side by side as one offline HTML page (tables, deltas against
    the baseline with the paper's expected direction, bar charts, training curves)."""
    from evaluation.report.collect import ReportInputError
    from evaluation.report.dashboard import COMPARE_STAGES, build_dashboard, split_tags
    from evaluation.report.render import DASHBOARD_PAGE
    from ns3 import tracking

    p = params()
    try:
        stages, tagged_profile, tags = split_tags(tag)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--tag") from None
    if profile and tagged_profile and profile != tagged_profile:
        raise typer.BadParameter(f"--profile {profile} and --tag ns3.profile={tagged_profile} disagree")
    try:
        files = build_dashboard(tracking_uri or tracking.default_tracking_uri(p.root),
                                experiment or p.tracking.experiment, profile or tagged_profile or p.profile,
                                output or p.resolve("reports") / DASHBOARD_PAGE, baseline=baseline or p.report.baseline,
                                stages=stages or COMPARE_STAGES, tags=tags, metrics=metric, pins=run_ids,
                                finished_only=not include_unfinished, pesq_key=p.report.pesq)
    except ReportInputError as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"html": str(files.html), "csv": str(files.csv), "variants": files.variants,
                           "runs": files.runs}, indent=1))


@app.command("config")
def show_config() -> None:
    """Validate and print the resolved parameters."""
    typer.echo(yaml.safe_dump(params().model_dump(), sort_keys=False))


def _mount_codec_tools() -> None:
    from ns3.codec.cli import app as codec_app

    app.add_typer(codec_app, name="codec", help="FACodec tools: import-official, encode, decode, vc")


_mount_codec_tools()


def _mount_tts_tools() -> None:
    from ns3.tts.cli import tts, vc

    app.command("tts")(tts)
    app.command("vc")(vc)


_mount_tts_tools()

if __name__ == "__main__":
    app()
