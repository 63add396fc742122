"""Gather evaluated variants from the codec evaluation's metrics JSON files or from MLflow runs.

Both sources end in the same ``VariantResult``: per section (``reconstruction``, ``vc``) a mapping
system -> metric -> value, where ``None`` means "not available" and ``reason`` says why. A missing
number is never turned into a zero.

MLflow layout read here (written by the evaluate_codec stage): runs tagged ``ns3.stage`` =
``evaluate_codec`` and ``ns3.variant`` = <name>, metrics ``eval/<system>/<metric>`` (``eval/vc/<metric>``
for the codec's own voice conversion), params ``codec.model.<hparam>``, and optionally the metrics JSON
itself logged as the artifact ``eval_codec.json`` (its unavailability reasons and notes are read too).
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

SECTIONS = ("reconstruction", "vc", "probe")
OUR_CODEC = "ns3-facodec"
EVAL_STAGE = "evaluate_codec"
HPARAM_PREFIX = "codec.model."

Metrics = dict[str, dict[str, "float | None"]]  # system -> metric -> value


@dataclass(frozen=True)
class ReconSample:
    """One reconstruction example: the reference recording and each system's output."""

    key: str
    reference: Path
    systems: dict[str, Path]


@dataclass(frozen=True)
class VCSample:
    source: Path
    prompt: Path
    converted: Path


@dataclass
class VariantResult:
    """Everything the report needs from one evaluated codec variant."""

    name: str
    source: str  # the JSON path or "mlflow run <id>", quoted in footnotes
    codec_hparams: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    reconstruction: Metrics = field(default_factory=dict)
    vc: Metrics = field(default_factory=dict)
    probe: Metrics = field(default_factory=dict)  # code group (and "chance") -> phone / speaker / f0 probe scores
    unavailable: dict[str, str] = field(default_factory=dict)  # system -> why it was not evaluated
    metric_notes: dict[str, str] = field(default_factory=dict)  # metric -> backend or why unavailable
    recon_samples: list[ReconSample] = field(default_factory=list)
    vc_samples: list[VCSample] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)

    def section(self, section: str) -> Metrics:
        if section not in SECTIONS:
            raise KeyError(f"unknown section {section!r} (use one of {SECTIONS})")
        return getattr(self, section)

    def value(self, section: str, system: str, metric: str) -> float | None:
        return self.section(section).get(system, {}).get(metric)

    def reason(self, section: str, system: str, metric: str) -> str:
        """Why ``value(section, system, metric)`` is missing, as specific as the inputs allow."""
        if system in self.unavailable:
            return f"{system}: {self.unavailable[system]}"
        for key in (metric, metric.split("_")[0]):
            note = self.metric_notes.get(key)
            if note and "unavailable" in note.lower():
                return f"{metric}: {note}"
        if system not in self.section(section):
            return f"{system} has no {section} results in variant '{self.name}' ({self.source})"
        return f"{metric} not reported for {system} in variant '{self.name}' ({self.source})"


class ReportInputError(ValueError):
    """A metrics file or MLflow run does not have the expected layout."""


# ----------------------------------------------------------------------------------------------- files

def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportInputError(f"{where}: expected a number or null, got {value!r}")
    value = float(value)
    return value if math.isfinite(value) else None


def _metrics(block: Any, where: str) -> Metrics:
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ReportInputError(f"{where}: expected an object of system -> metrics, got {type(block).__name__}")
    out: Metrics = {}
    for system, metrics in block.items():
        if not isinstance(metrics, Mapping):
            raise ReportInputError(f"{where}.{system}: expected an object of metric -> number")
        out[str(system)] = {str(m): _number(v, f"{where}.{system}.{m}") for m, v in metrics.items()}
    return out


def _strings(block: Any, where: str) -> dict[str, str]:
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ReportInputError(f"{where}: expected an object of name -> text")
    return {str(k): str(v) for k, v in block.items()}


def _path(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ReportInputError(f"{where}: expected a file path, got {value!r}")
    p = Path(value)
    return p if p.is_absolute() else base / p


def _samples(block: Any, base: Path, where: str) -> tuple[list[ReconSample], list[VCSample]]:
    block = block or {}
    if not isinstance(block, Mapping):
        raise ReportInputError(f"{where}: expected an object with 'recon' and 'vc' lists")
    recon, vc = [], []
    for i, item in enumerate(block.get("recon") or []):
        w = f"{where}.recon[{i}]"
        if not isinstance(item, Mapping) or "reference" not in item:
            raise ReportInputError(f"{w}: needs at least a 'reference' path")
        systems = {k: _path(v, base, f"{w}.{k}") for k, v in item.items() if k not in ("key", "reference")}
        recon.append(ReconSample(str(item.get("key", i)), _path(item["reference"], base, f"{w}.reference"), systems))
    for i, item in enumerate(block.get("vc") or []):
        w = f"{where}.vc[{i}]"
        if not isinstance(item, Mapping) or any(k not in item for k in ("source", "prompt", "converted")):
            raise ReportInputError(f"{w}: needs 'source', 'prompt' and 'converted' paths")
        vc.append(VCSample(*(_path(item[k], base, f"{w}.{k}") for k in ("source", "prompt", "converted"))))
    return recon, vc


def parse_result(data: Mapping[str, Any], source: str, base: Path) -> VariantResult:
    """Build a ``VariantResult`` from the metrics JSON layout; relative paths resolve against ``base``."""
    if not isinstance(data, Mapping):
        raise ReportInputError(f"{source}: expected a JSON object at the top level")
    variant = data.get("variant")
    if not isinstance(variant, Mapping) or not isinstance(variant.get("name"), str):
        raise ReportInputError(f"{source}: missing 'variant.name' (the evaluate stage writes it; re-run it)")
    recon, vc = _samples(data.get("samples"), base, f"{source}: samples")
    figures = {str(k): _path(v, base, f"{source}: figures.{k}") for k, v in (data.get("figures") or {}).items()}
    return VariantResult(
        name=variant["name"], source=source,
        codec_hparams=dict(variant.get("codec_hparams") or {}), overrides=dict(variant.get("overrides") or {}),
        reconstruction=_metrics(data.get("reconstruction"), f"{source}: reconstruction"),
        vc=_metrics(data.get("vc"), f"{source}: vc"),
        probe=_probe_metrics(data.get("disentanglement"), f"{source}: disentanglement"),
        unavailable=_strings(data.get("unavailable"), f"{source}: unavailable"),
        metric_notes=_strings(data.get("metric_notes"), f"{source}: metric_notes"),
        recon_samples=recon, vc_samples=vc, figures=figures,
    )


def _probe_metrics(block: Any, where: str) -> Metrics:
    """The evaluate stage's ``disentanglement`` block -> {group: {probe: value}} with the chance levels as "chance"."""
    if not block:
        return {}
    if not isinstance(block, Mapping) or not isinstance(block.get("probes"), Mapping):
        raise ReportInputError(f"{where}: expected an object with 'probes' (and 'chance')")
    return _metrics({**block["probes"], "chance": block.get("chance") or {}}, where)


def collect_from_files(paths: Iterable[str | Path]) -> list[VariantResult]:
    """One ``VariantResult`` per metrics JSON file, in the order given."""
    results = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"metrics file {path} not found (run the evaluate stage first: `ns3 evaluate`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ReportInputError(f"{path}: not valid JSON ({e})") from e
        results.append(parse_result(data, str(path), path.resolve().parent))
    return results


# ---------------------------------------------------------------------------------------------- mlflow

def param_value(text: str) -> Any:
    """MLflow stores params as strings; recover bools and numbers so variants compare like the JSON."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _metrics_from_run(metrics: Mapping[str, float], vc_system: str) -> tuple[Metrics, Metrics, Metrics]:
    recon: Metrics = {}
    vc: Metrics = {}
    probe: Metrics = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "eval":
            continue
        value = value if math.isfinite(value) else None
        if parts[1] == "probe" and len(parts) == 4:  # eval/probe/<group>/<probe>
            probe.setdefault(parts[2], {})[parts[3]] = value
        elif parts[1] == "vc":
            system, metric = (vc_system, parts[2]) if len(parts) == 3 else (parts[2], "/".join(parts[3:]))
            vc.setdefault(system, {})[metric] = value
        else:
            recon.setdefault(parts[1], {})["/".join(parts[2:])] = value
    return recon, vc, probe


def _artifact_json(client: Any, run_id: str, artifact_file: str) -> dict | None:
    names = {a.path for a in client.list_artifacts(run_id)}
    if artifact_file not in names:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, artifact_file, tmp)
        return json.loads(Path(local).read_text(encoding="utf-8"))


def stage_runs(tracking_uri: str, experiment: str, stage: str, tags: Mapping[str, str] | None = None,
               finished_only: bool = True) -> tuple[Any, list]:
    """(client, every run of ``stage`` in ``experiment`` with these extra ``tags``, newest first), all pages."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ReportInputError(f"MLflow experiment {experiment!r} not found at {tracking_uri} "
                               "(check MLFLOW_TRACKING_URI or the experiment name)")
    filters = [f"tags.`{k}` = '{v}'" for k, v in {"ns3.stage": stage, **(tags or {})}.items()]
    filters += ["attributes.status = 'FINISHED'"] if finished_only else []
    runs, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], filter_string=" and ".join(filters),
                                  order_by=["attributes.start_time DESC"], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return client, runs


def collect_from_mlflow(tracking_uri: str, experiment: str = "ns3", stage: str = EVAL_STAGE,
                        artifact_file: str = "eval_codec.json", vc_system: str = OUR_CODEC,
                        finished_only: bool = True) -> list[VariantResult]:
    """The latest ``stage`` run per ``ns3.variant`` tag in ``experiment``, newest variant first.

    ``finished_only`` skips failed or still-running runs, whose metrics may be partial.
    """
    client, runs = stage_runs(tracking_uri, experiment, stage, finished_only=finished_only)
    results: dict[str, VariantResult] = {}
    for run in runs:  # newest first: the first run seen per variant wins
        name = run.data.tags.get("ns3.variant") or run.info.run_name or run.info.run_id
        if name in results:
            continue
        source = f"mlflow run {run.info.run_id}"
        logged = _artifact_json(client, run.info.run_id, artifact_file) or {}
        variant = logged.get("variant") or {}
        hparams = dict(variant.get("codec_hparams") or {})
        hparams.update({k[len(HPARAM_PREFIX):]: param_value(v) for k, v in run.data.params.items()
                        if k.startswith(HPARAM_PREFIX)})
        recon, vc, probe = _metrics_from_run(run.data.metrics, vc_system)
        results[name] = VariantResult(
            name=name, source=source, codec_hparams=hparams, overrides=dict(variant.get("overrides") or {}),
            reconstruction=recon, vc=vc, probe=probe,
            unavailable=_strings(logged.get("unavailable"), f"{source}: {artifact_file}: unavailable"),
            metric_notes=_strings(logged.get("metric_notes"), f"{source}: {artifact_file}: metric_notes"),
        )
    return list(results.values())
