"""Paper-format report: collect evaluated variants, build the paper's tables, write md/html/csv.

    results = collect_from_files(["metrics/eval_codec.json", ...])   # or collect_from_mlflow(uri)
    files = build_report(results, "reports/")                        # tables + figures + audio links

Step by step: ``build_tables(results) -> ReportTables``, then ``write_report(tables, out_dir, figures=...,
samples=...)``. The paper's own numbers live in ``reference``; figure helpers in ``plots``.

Zero-shot TTS (paper Tables 1-4, 10-12), on the same tables and renderer:

    results = collect_tts_from_files(["data/eval_tts/eval_tts.json"], profile="mini")   # or collect_tts_from_mlflow
    files = build_tts_report(results, "reports/tts")
    queue_commands(TTS_ABLATIONS)   # the `dvc exp run --queue` argv of every TTS ablation
"""
from .ablation import ABLATIONS, AblationMetric, AblationSpec, build_ablation_table, direction, pick_baseline
from .collect import (
    ReconSample,
    ReportInputError,
    VariantResult,
    VCSample,
    collect_from_files,
    collect_from_mlflow,
    parse_result,
)
from .render import ReportFiles, build_report, write_report
from .table import Cell, Row, Table, read_table_csv, table_to_csv
from .tables import ReportTables, build_codec_table, build_tables, build_vc_table
from .tts_ablations import TTS_ABLATIONS, TTSAblationSpec, TTSMetric, queue_commands, reduced_budget_sets
from .tts_collect import TTSResult, collect_tts_from_files, collect_tts_from_mlflow
from .tts_report import build_tts_report
from .tts_tables import TTSReportTables, build_tts_tables

__all__ = [
    "ABLATIONS", "AblationMetric", "AblationSpec", "Cell", "ReconSample", "ReportFiles", "ReportInputError",
    "ReportTables", "Row", "Table", "VCSample", "VariantResult", "build_ablation_table", "build_codec_table",
    "build_report", "build_tables", "build_vc_table", "collect_from_files", "collect_from_mlflow", "direction",
    "parse_result", "pick_baseline", "read_table_csv", "table_to_csv", "write_report",
    "TTS_ABLATIONS", "TTSAblationSpec", "TTSMetric", "TTSReportTables", "TTSResult", "build_tts_report",
    "build_tts_tables", "collect_tts_from_files", "collect_tts_from_mlflow", "queue_commands", "reduced_budget_sets",
]
