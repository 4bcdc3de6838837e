"""The Model page: the training report of the run the endpoint serves (or the newest complete run).

The report's Markdown holds the metrics tables (model beside the baselines and, on synthetic data, the oracle);
its plots are shown where the report places them. The registry's metrics of each model of the run follow.
"""

from __future__ import annotations

import streamlit as st

from recsys.errors import RecsysError
from recsys.store.base import ModelRegistry
from recsys.ui.report import Figure, run_report


def render(registry: ModelRegistry, run_id: str | None) -> None:
    st.title("Model")
    try:
        report = run_report(registry, run_id)
    except RecsysError as exc:
        st.warning(str(exc))
        return
    st.caption(f"run `{report.run_id}`")
    if not report.parts:
        st.info(
            f"Run {report.run_id} has no training report: the ranking step writes it "
            "(`python -m training_pipeline all`, or `ranking` after `retrieval`)."
        )
    for part in report.parts:
        if isinstance(part, Figure):
            st.image(str(part.path), caption=part.caption)
        else:
            st.markdown(part)
    st.subheader("Registry metrics of the run's models")
    st.dataframe(report.metrics, hide_index=True)
