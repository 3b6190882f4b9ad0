"""Layer 7: markdown and plots from tracked data only: the search report, the study report and
their sections. Nothing here trains or recounts."""

from nas.report._card import model_card
from nas.report._importance import MIN_TRIALS_FOR_IMPORTANCE, choices, what_mattered
from nas.report._study import write_study_report
from nas.report._write import report_path, write_report

__all__ = ["model_card", "MIN_TRIALS_FOR_IMPORTANCE", "choices", "report_path", "what_mattered", "write_report",
           "write_study_report"]
