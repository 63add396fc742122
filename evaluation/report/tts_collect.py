"""Gather evaluated TTS variants from evaluate_tts's ``eval_tts.json`` files or from its MLflow runs.

Both sources end in the same ``TTSResult``: per protocol (``librispeech``, ``librispeech_valle``,
``ravdess``) a mapping system -> metric -> value, where ``None`` means unavailable and ``reason`` says why.
Error rates stay fractions here; the tables turn them into percent.

Every result carries its profile (mini | ci | paper). A report never mixes profiles: the collectors filter
on it and ``build_tts_tables`` refuses a mixed list, because a mini model's numbers next to a paper run's
would read as an ablation effect.

MLflow layout read here (written by evaluate_tts): runs tagged ``ns3.stage`` = ``evaluate_tts``,
``ns3.variant`` and ``ns3.profile``; metrics ``tts/<protocol>/<system>/<metric>`` (the metric may contain
a slash: ``mcd/happy``); params ``codec_hparams.*``, ``diffusion_hparams.*``, ``sample.*`` (or spelled as in
params.yaml: ``codec.model.*``, ``diffusion.model.*``, ``diffusion.sample.*``); the samples under the
artifact folder ``samples/``; and the JSON itself as the artifact ``eval_tts.json``, which is preferred when
present (it has the reasons and the models).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlparse

from .collect import ReportInputError, _artifact_json, stage_runs, _metrics, _number, param_value, _path, _strings

TTS_STAGE = "evaluate_tts"
TTS_ARTIFACT = "eval_tts.json"
PROFILES = ("mini", "ci", "paper")
# settings prefix -> the eval_tts.json block holding that group's values
SETTING_BLOCKS = {"codec.model.": "codec_hparams", "diffusion.model.": "diffusion_hparams",
                  "diffusion.sample.": "sample"}
# metric name prefix -> the "models" key naming the model behind it (null there: not configured)
# First match wins: the WavLM columns before the plain ``sim_`` (Resemblyzer) prefix that would also match them.
METRIC_MODELS = (("sim_o_wavlm_tdnn", "sim_wavlm_tdnn"), ("sim_r_wavlm_tdnn", "sim_wavlm_tdnn"),
                 ("sim_o_wavlm", "sim_wavlm"), ("sim_r_wavlm", "sim_wavlm"), ("sim_", "sim"), ("per", "per"), ("wer", "wer"), ("utmos", "mos"), ("dnsmos", "dnsmos"))

Systems = dict[str, dict[str, "float | None"]]  # system -> metric -> value


@dataclass(frozen=True)
class TTSSample:
    """One generated example with its prompt and the target recording (paths resolved)."""

    protocol: str
    id: str
    text: str
    prompt: Path
    target: Path
    generated: Path


@dataclass
class ProtocolResult:
    """One test protocol's numbers: ``systems`` (generated, generated_one_step, resynthesis, ground_truth)."""

    name: str
    systems: Systems = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # "<system>/<metric>", "<system>" or "*" -> why
    items: int | None = None
    speakers: int | None = None
    list_path: str | None = None


@dataclass
class TTSResult:
    """Everything the TTS report needs from one evaluated variant."""

    name: str
    profile: str
    source: str  # the JSON path or "mlflow run <id>", quoted in footnotes
    overrides: dict[str, Any] = field(default_factory=dict)
    codec_hparams: dict[str, Any] = field(default_factory=dict)
    diffusion_hparams: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    models: dict[str, str | None] = field(default_factory=dict)  # metric family -> model (None: not configured)
    protocols: dict[str, ProtocolResult] = field(default_factory=dict)
    samples: list[TTSSample] = field(default_factory=list)
    metric_notes: dict[str, str] = field(default_factory=dict)

    def value(self, protocol: str, system: str, metric: str) -> float | None:
        p = self.protocols.get(protocol)
        return p.systems.get(system, {}).get(metric) if p else None

    def reason(self, protocol: str, system: str, metric: str) -> str:
        """Why ``value(protocol, system, metric)`` is missing, as specific as the inputs allow."""
        where = f"variant '{self.name}' ({self.source})"
        p = self.protocols.get(protocol)
        if p is None:
            return f"protocol {protocol} not evaluated in {where}"
        for key in (f"{system}/{metric}", system, "*"):  # "*": the whole protocol (e.g. nothing synthesized)
            if key in p.reasons:
                return p.reasons[key]
        model_key = next((k for prefix, k in METRIC_MODELS if metric.startswith(prefix)), None)
        if model_key in self.models and self.models[model_key] is None:
            note = self.metric_notes.get(model_key) or self.metric_notes.get(metric)
            return f"{metric}: no model configured for evaluate_tts (models.{model_key} is null)" + (
                f"; {note}" if note else "")
        if system not in p.systems:
            return f"{system} not evaluated on {protocol} in {where}"
        return f"{metric} not reported for {protocol}/{system} in {where}"

    def setting(self, key: str) -> Any:
        """A dotted param (``diffusion.sample.use_cfg``) as this variant ran it; ``None`` when not recorded."""
        for prefix, block in SETTING_BLOCKS.items():
            if key.startswith(prefix):
                values = getattr(self, block)
                name = key[len(prefix):]
                if name in values:
                    return values[name]
        return self.overrides.get(key)


# ----------------------------------------------------------------------------------------------- files

def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ReportInputError(f"{where}: expected an object, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _count(value: Any, where: str) -> int | None:
    number = _number(value, where)
    return None if number is None else int(number)


def _protocols(block: Any, where: str) -> dict[str, ProtocolResult]:
    out = {}
    for name, proto in _mapping(block, where).items():
        w = f"{where}.{name}"
        if not isinstance(proto, Mapping) or not isinstance(proto.get("systems"), Mapping):
            raise ReportInputError(f"{w}: expected an object with 'systems' (system -> metric -> number)")
        listed = proto.get("list")
        out[name] = ProtocolResult(
            name=name, systems=_metrics(proto["systems"], f"{w}.systems"),
            reasons=_strings(proto.get("reasons"), f"{w}.reasons"),
            items=_count(proto.get("items"), f"{w}.items"), speakers=_count(proto.get("speakers"), f"{w}.speakers"),
            list_path=str(listed) if listed is not None else None)
    return out


def _samples(block: Any, base: Path, where: str) -> list[TTSSample]:
    if block is None:
        return []
    if not isinstance(block, list):
        raise ReportInputError(f"{where}: expected a list of samples")
    out = []
    for i, item in enumerate(block):
        w = f"{where}[{i}]"
        missing = [k for k in ("protocol", "id", "prompt", "target", "generated")
                   if not isinstance(item, Mapping) or k not in item]
        if missing:
            raise ReportInputError(f"{w}: missing {missing}")
        paths = [_path(item[k], base, f"{w}.{k}") for k in ("prompt", "target", "generated")]
        out.append(TTSSample(str(item["protocol"]), str(item["id"]), str(item.get("text") or ""), *paths))
    return out


def parse_tts_result(data: Any, source: str, base: Path) -> TTSResult:
    """Build a ``TTSResult`` from the eval_tts.json layout; relative sample paths resolve against ``base``."""
    if not isinstance(data, Mapping):
        raise ReportInputError(f"{source}: expected a JSON object at the top level")
    variant = data.get("variant")
    if not isinstance(variant, Mapping) or not isinstance(variant.get("name"), str):
        raise ReportInputError(f"{source}: missing 'variant.name' (evaluate_tts writes it; re-run that stage)")
    profile = data.get("profile")
    if not isinstance(profile, str) or not profile:
        raise ReportInputError(f"{source}: missing 'profile' (mini | ci | paper); reports never mix profiles")
    models = _mapping(data.get("models"), f"{source}: models")
    return TTSResult(
        name=variant["name"], profile=profile, source=source,
        overrides=_mapping(variant.get("overrides"), f"{source}: variant.overrides"),
        codec_hparams=_mapping(data.get("codec_hparams"), f"{source}: codec_hparams"),
        diffusion_hparams=_mapping(data.get("diffusion_hparams"), f"{source}: diffusion_hparams"),
        sample=_mapping(data.get("sample"), f"{source}: sample"),
        models={k: (str(v) if v is not None else None) for k, v in models.items()},
        protocols=_protocols(data.get("protocols"), f"{source}: protocols"),
        samples=_samples(data.get("samples"), base, f"{source}: samples"),
        metric_notes=_strings(data.get("metric_notes"), f"{source}: metric_notes"),
    )


def _check_unique(results: Iterable[TTSResult]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for r in results:
        other = seen.setdefault((r.profile, r.name), r.source)
        if other != r.source:
            raise ReportInputError(f"variant '{r.name}' (profile {r.profile}) given twice: {other} and {r.source}")


def collect_tts_from_files(paths: Iterable[str | Path], profile: str | None = None) -> list[TTSResult]:
    """One ``TTSResult`` per eval_tts.json, in the order given; with ``profile``, only that profile's."""
    results = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"TTS metrics file {path} not found (run the evaluate_tts stage first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ReportInputError(f"{path}: not valid JSON ({e})") from e
        results.append(parse_tts_result(data, str(path), path.resolve().parent))
    results = [r for r in results if profile is None or r.profile == profile]
    _check_unique(results)
    return results


# ---------------------------------------------------------------------------------------------- mlflow

def _protocols_from_metrics(metrics: Mapping[str, float]) -> dict[str, ProtocolResult]:
    out: dict[str, ProtocolResult] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) < 4 or parts[0] != "tts":
            continue
        proto = out.setdefault(parts[1], ProtocolResult(parts[1]))
        proto.systems.setdefault(parts[2], {})["/".join(parts[3:])] = value if math.isfinite(value) else None
    return out


def tts_result_from_run(run: Any, profile: str) -> TTSResult:
    """A run without the JSON artifact: numbers from its metrics, settings from its params."""
    blocks: dict[str, dict[str, Any]] = {b: {} for b in SETTING_BLOCKS.values()}
    # The stage logs its blocks flattened ("sample.use_cfg"); the params.yaml spelling works too.
    prefixes = [*SETTING_BLOCKS.items(), *((f"{b}.", b) for b in SETTING_BLOCKS.values())]
    for key, text in run.data.params.items():
        for prefix, block in prefixes:
            if key.startswith(prefix):
                blocks[block][key[len(prefix):]] = param_value(text)
    name = run.data.tags.get("ns3.variant") or run.info.run_name or run.info.run_id
    return TTSResult(name=name, profile=profile, source=f"mlflow run {run.info.run_id}",
                     protocols=_protocols_from_metrics(run.data.metrics), **blocks)


def _local_artifact_dir(run: Any) -> Path:
    """Where a file-backed artifact store keeps the run's files (sample paths in the JSON are relative to it)."""
    parsed = urlparse(run.info.artifact_uri or "")
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else Path(".")


def collect_tts_from_mlflow(tracking_uri: str, experiment: str, profile: str, stage: str = TTS_STAGE,
                            artifact_file: str = TTS_ARTIFACT, finished_only: bool = True) -> list[TTSResult]:
    """The latest ``stage`` run per variant among ``profile``'s runs in ``experiment``, newest first.

    ``finished_only`` skips failed or still-running runs, whose metrics may be partial.
    """
    client, runs = stage_runs(tracking_uri, experiment, stage, {"ns3.profile": profile}, finished_only)
    results: dict[str, TTSResult] = {}
    for run in runs:  # newest first: the first run seen per variant wins
        tagged = run.data.tags.get("ns3.variant")
        if tagged in results:
            continue
        source = f"mlflow run {run.info.run_id}"
        try:
            logged = _artifact_json(client, run.info.run_id, artifact_file)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ReportInputError(f"{source}: artifact {artifact_file} is not valid JSON ({e})") from e
        if logged is None:
            result = tts_result_from_run(run, profile)
        else:
            result = parse_tts_result(logged, f"{source}: {artifact_file}", _local_artifact_dir(run))
            if result.profile != profile:
                raise ReportInputError(f"{source}: tagged ns3.profile={profile} but {artifact_file} says "
                                       f"profile {result.profile!r}")
            result.source = source
        results.setdefault(result.name, result)
    return list(results.values())
