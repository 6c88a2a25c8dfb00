"""Report tables read from an object store by URL (a real S3 server, moto, on 127.0.0.1), as from a file."""

import pandas as pd
from conftest import write_reports

from report2label.core import label

TEXTS = ["Fraktur des Außenknöchels.", "Keine Fraktur.", "V.a. Fraktur der distalen Fibula."]


def test_labels_from_a_store_url_equal_those_from_the_file(store, tmp_path):
    local = write_reports(tmp_path / "reports.csv", TEXTS)
    url = store.put(local, "ankle/reports.csv")
    label("ankle-fracture", local, tmp_path / "from-file", show_progress=False)
    label("ankle-fracture", url, tmp_path / "from-store", show_progress=False)
    expected, got = (
        pd.read_csv(tmp_path / f / "labels.csv").drop(columns="labelled_at") for f in ("from-file", "from-store")
    )
    pd.testing.assert_frame_equal(got, expected)
    assert got["fracture"].tolist() == [1, 0, 1]


def test_parquet_in_a_store_is_read_too(store, tmp_path):
    table = tmp_path / "reports.parquet"
    pd.DataFrame({"report_id": ["a", "b"], "text": TEXTS[:2]}).to_parquet(table)
    summary = label("ankle-fracture", store.put(table, "ankle/reports.parquet"), tmp_path / "out", show_progress=False)
    assert (summary.total, summary.label_counts["fracture"]) == (2, {0: 1, 1: 1})


def test_a_missing_object_is_a_one_line_error_without_the_query(store, r2l, tmp_path):
    """A URL may hold credentials (s3://KEY:SECRET@bucket/…): errors name the object without them."""
    url = store.url("ankle/missing.csv").replace("s3://", "s3://r2l:topsecret@")
    result = r2l("label", "ankle-fracture", url, "-o", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "s3://reports/ankle/missing.csv: no such file" in result.output
    assert "topsecret" not in result.output and not (tmp_path / "out").exists()
