"""Prefect flow of the ``report`` stage: paper-format tables from this variant's metrics + other variants in MLflow."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params


def _training_curves(params: Params):
    """Figure of this variant's latest train_codec run (validation PESQ/STOI/mel + main losses), or None."""
    import mlflow

    from evaluation.report.plots import plot_training_curves

    uri = tracking.default_tracking_uri(params.root)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(params.tracking.experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], filter_string=(
        f"tags.`ns3.stage` = 'train_codec' and tags.`ns3.variant` = '{params.variant}'"),
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    wanted = ["eval/valid_pesq_wb", "eval/valid_stoi", "eval/valid_f0_rmse", "eval/valid_mel",
              "codec/rec", "codec/phone", "codec/f0"]
    keys = [k for k in wanted if k in runs[0].data.metrics]
    return plot_training_curves(uri, runs[0].info.run_id, keys, title="codec training") if keys else None


@flow(name="report", retries=0)
def report_flow(params: Params) -> dict:
    from evaluation.report.collect import collect_from_files, collect_from_mlflow
    from evaluation.report.render import build_report

    log = get_run_logger()
    r = params.report
    out_dir = params.resolve("reports") / "codec"
    with tracking.stage_run("report", params=r.model_dump(), tags={"ns3.variant": params.variant}, root=params.root,
                            experiment=params.tracking.experiment):
        dashboard = compare_dashboard(params)  # first: the codec and TTS reports link to it when it is there
        results = collect_from_files([params.resolve("data") / "eval_codec" / "eval_codec.json"])
        if r.from_mlflow:
            here = {x.name for x in results}
            uri = tracking.default_tracking_uri(params.root)
            others = [x for x in collect_from_mlflow(uri, params.tracking.experiment) if x.name not in here]
            results += others
            log.info("report: %d variant(s) from MLflow: %s", len(others), [x.name for x in others])
        curves = _training_curves(params)
        files = build_report(results, out_dir, baseline=r.baseline, pesq_key=r.pesq,
                             extra_figures={"training_curves": curves} if curves is not None else None)
        for w in files.warnings:
            log.warning(w)
        tracking.log_artifact(out_dir, "report")
        tts = tts_report(params, dashboard=False)
        tracking.log_artifact(params.resolve("reports") / "tts", "report_tts")
        if dashboard["dashboard"]:
            tracking.log_artifact(Path(dashboard["dashboard"]).parent, "report_compare")
    return {"report": str(out_dir / "report.md"), "variants": [x.name for x in results], **tts, **dashboard}


def compare_dashboard(params: Params) -> dict:
    """reports/compare/index.html (``ns3 compare``): this experiment's variants of this profile side by side.

    With ``report.dashboard`` off, or without runs to compare (nothing evaluated yet, no baseline run), it is
    skipped and the reason logged; a page written earlier stays, with its build time on it.
    """
    from evaluation.report.collect import ReportInputError
    from evaluation.report.dashboard import build_dashboard
    from evaluation.report.render import DASHBOARD_PAGE

    if not params.report.dashboard:
        return {"dashboard": None}
    out = params.resolve("reports") / DASHBOARD_PAGE
    try:
        files = build_dashboard(tracking.default_tracking_uri(params.root), params.tracking.experiment,
                                params.profile, out, baseline=params.report.baseline, pesq_key=params.report.pesq)
    except ReportInputError as e:
        get_run_logger().warning("dashboard skipped: %s", e)
        return {"dashboard": None, "dashboard_missing": str(e)}
    return {"dashboard": str(files.html), "dashboard_variants": files.variants}


def tts_report(params: Params, dashboard: bool = True) -> dict:
    """reports/tts: the TTS tables of this variant's eval_tts.json + this profile's other variants in MLflow.
    Without a TTS evaluation (a codec-only variant) the folder holds a report saying so, and why.
    ``dashboard``: build the comparison page beside it first (``ns3 ablations`` reports come only through here)."""
    from evaluation.report.tts_collect import collect_tts_from_files, collect_tts_from_mlflow
    from evaluation.report.tts_report import build_tts_report
    from ns3.recipes.state import write_json_atomic

    log = get_run_logger()
    dash = compare_dashboard(params) if dashboard else {}
    out_dir = params.resolve("reports") / "tts"
    mine = params.resolve("data") / "eval_tts" / "eval_tts.json"
    results = collect_tts_from_files([mine], profile=params.profile) if mine.exists() else []
    if params.report.from_mlflow:
        here = {x.name for x in results}
        uri = tracking.default_tracking_uri(params.root)
        results += [x for x in collect_tts_from_mlflow(uri, params.tracking.experiment, params.profile)
                    if x.name not in here]
    if not any(x.name == params.report.baseline for x in results):
        out_dir.mkdir(parents=True, exist_ok=True)
        why = (f"no TTS evaluation of the baseline variant {params.report.baseline!r} in profile {params.profile!r} "
               f"({mine} absent, none in MLflow): run `ns3 synthesize` and `ns3 evaluate-tts`")
        (out_dir / "report.md").write_text(f"# Zero-shot TTS report\n\n{why}.\n")
        write_json_atomic(out_dir / "missing.json", {"reason": why})
        log.warning("tts report: %s", why)
        return {"tts_report": None, "tts_missing": why, **dash}
    files = build_tts_report(results, out_dir, baseline=params.report.baseline)
    for w in files.warnings:
        log.warning(w)
    return {"tts_report": str(files.markdown), "tts_variants": [x.name for x in results], **dash}
