"""The run report: Markdown tables with every method's numbers and real PNG plots beside them."""

from __future__ import annotations

from pathlib import Path

from recsys.training.report import IMPORTANCE_PNG, MAP_PNG, RECALL_PNG, TRAINING_PNG, markdown_table, write_report

RETRIEVAL = {
    "run_id": "run-x",
    "split": {"val_start": "2020-09-09T00:00:00", "test_start": "2020-09-16T00:00:00", "end": "2020-09-23T00:00:00"},
    "rows": {"train": 100, "validation": 10, "test": 12},
    "catalogue": 50,
    "metrics": [
        {"method": "two_tower", "top_100_accuracy": 0.5, "recall@12": 0.125, "recall@100": 0.51},
        {"method": "popularity", "top_100_accuracy": None, "recall@12": 0.1, "recall@100": 0.36},
    ],
    "history": [
        {"epoch": 1, "loss": 3.0, "val_recall_at_100": 0.4},
        {"epoch": 2, "loss": 2.5, "val_recall_at_100": 0.45},
    ],
}
RANKING = {
    "objective": "YetiRank",
    "metrics": [
        {"method": "retrieval order", "map@12": 0.02, "ndcg@12": 0.05},
        {"method": "retrieval + ranker", "map@12": 0.031, "ndcg@12": 0.06},
    ],
    "importance": [{"feature": "retrieval_score", "importance": 30.0}, {"feature": "units_7d", "importance": 9.5}],
}


def test_markdown_table_formats_numbers_and_gaps() -> None:
    table = markdown_table([{"a": 0.123456, "b": None, "c": "x"}])
    assert table.splitlines() == ["| a | b | c |", "|---|---|---|", "| 0.1235 | — | x |"]


def test_report_holds_every_number_and_plot(tmp_path: Path) -> None:
    path = write_report(tmp_path, RETRIEVAL, RANKING)
    text = path.read_text()
    assert "run-x" in text and "train < 2020-09-09 ≤ validation < 2020-09-16" in text
    assert "| two_tower | 0.5000 | 0.1250 | 0.5100 |" in text
    assert "| popularity | — | 0.1000 | 0.3600 |" in text
    assert "| retrieval + ranker | 0.0310 | 0.0600 |" in text and "YetiRank" in text
    assert "| retrieval_score | 30.0000 |" in text
    for png in (TRAINING_PNG, RECALL_PNG, MAP_PNG, IMPORTANCE_PNG):
        assert f"]({png})" in text
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_names_the_ranker_weeks_when_they_were_saved(tmp_path: Path) -> None:
    weeks = {"train": ["2020-08-26", "2020-09-02"], "validation": "2020-09-09", "test": "2020-09-16"}
    text = write_report(tmp_path / "new", RETRIEVAL, RANKING | {"weeks": weeks}).read_text()
    assert "Ranker weeks (start days): training 2020-08-26, 2020-09-02; validation 2020-09-09; test 2020-09-16." in text
    assert "Ranker weeks" not in write_report(tmp_path / "old", RETRIEVAL, RANKING).read_text()  # saved before them


def test_report_without_ranking_has_only_retrieval(tmp_path: Path) -> None:
    text = write_report(tmp_path, RETRIEVAL).read_text()
    assert "Whole pipeline" not in text and not (tmp_path / MAP_PNG).exists()


def test_report_of_a_row_split_says_so_and_plots_top_k_accuracy(tmp_path: Path) -> None:
    split = RETRIEVAL["split"] | {"kind": "random", "share": 0.2, "seed": 42}
    metrics = [
        {"method": "two_tower", "top_1_accuracy": 0.01, "top_100_accuracy": 0.3, "top_100_accuracy_unseen": 0.32},
        {"method": "popularity", "top_1_accuracy": 0.0, "top_100_accuracy": 0.2, "top_100_accuracy_unseen": 0.21},
    ]
    text = write_report(tmp_path, RETRIEVAL | {"split": split, "metrics": metrics}).read_text()
    assert "Random split (20% of rows for test, as many for validation, seed 42): only comparable" in text
    assert "Time split" not in text and "on the test rows, whole catalogue" in text
    assert "| two_tower | 0.0100 | 0.3000 | 0.3200 |" in text
    assert (tmp_path / RECALL_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
