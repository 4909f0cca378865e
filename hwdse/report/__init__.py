"""Reports: figures from result Datasets (never from models) and report documents."""

from hwdse.report.figures import pareto_figure, roofline_figure
from hwdse.report.formats import (  # issue #3: format selection
    format_figures,
    write_format_report,
)
from hwdse.report.study import study_figures, write_report

__all__ = ["pareto_figure", "roofline_figure", "study_figures", "write_report", "format_figures", "write_format_report"]
