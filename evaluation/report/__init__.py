"""Paper-format report: collect evaluated variants, build the paper's tables, write md/html/csv.

    results = collect_from_files(["metrics/eval_codec.json", ...])   # or collect_from_mlflow(uri)
    files = build_report(results, "reports/")                        # tables + figures + audio links

Step by step: ``build_tables(results) -> ReportTables``, then ``write_report(tables, out_dir, figures=...,
samples=...)``. The paper's own numbers live in ``reference``; figure helpers in ``plots``.
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

__all__ = [
    "ABLATIONS", "AblationMetric", "AblationSpec", "Cell", "ReconSample", "ReportFiles", "ReportInputError",
    "ReportTables", "Row", "Table", "VCSample", "VariantResult", "build_ablation_table", "build_codec_table",
    "build_report", "build_tables", "build_vc_table", "collect_from_files", "collect_from_mlflow", "direction",
    "parse_result", "pick_baseline", "read_table_csv", "table_to_csv", "write_report",
]
