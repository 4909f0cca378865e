"""Reports: figures from result Datasets (never from models) and report documents."""

from hwdse.report.figures import pareto_figure, roofline_figure
from hwdse.report.study import study_figures, write_report

__all__ = ["pareto_figure", "roofline_figure", "study_figures", "write_report"]
