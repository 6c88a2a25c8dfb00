"""Bad input: one clear line naming the file, row or column, a non-zero exit, nothing lost."""

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core.atomic import atomic_path


def fails(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_missing_file(r2l, tmp_path):
    fails(r2l("label", "ankle-fracture", tmp_path / "nope.csv", "-o", tmp_path / "out"), "nope.csv: no such file")


def test_missing_column(r2l, tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"report_id": ["a"], "befund": ["Keine Fraktur."]}).to_csv(path, index=False)
    fails(
        r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"),
        "r.csv: no column 'text' (columns: report_id, befund); choose it with --text-col",
    )
    ok = r2l("label", "ankle-fracture", path, "-o", tmp_path / "out", "--text-col", "befund", "--no-progress")
    assert ok.exit_code == 0


@pytest.mark.parametrize("content", ["", "report_id,text\n"])
def test_empty_table(r2l, tmp_path, content):
    path = tmp_path / "r.csv"
    path.write_text(content)
    fails(
        r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"),
        "r.csv: the",
        "empty" if not content else "no rows",
    )


def test_duplicate_ids_with_different_text(r2l, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "x", "Weber-B-Fraktur."], ids=["a", "b", "a"])
    fails(
        r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"),
        "r.csv: report id 'a' appears in rows 1 and 3 with different texts",
    )


def test_duplicate_ids_with_the_same_text_are_labelled_once(r2l, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "Keine Fraktur."], ids=["a", "a"])
    result = r2l("label", "ankle-fracture", path, "-o", tmp_path / "out", "--no-progress")
    assert "1 reports: 1 labelled" in result.output


def test_empty_id(r2l, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "Fraktur."], ids=["a", ""])
    fails(r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"), "r.csv: row 2: empty 'report_id'")


def test_not_utf8(r2l, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("report_id,text\na,Keine Fraktur.\nb,Au\xdfenkn\xf6chel\n".encode("latin-1"))
    fails(r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"), "r.csv: line 3: byte 0xdf", "not UTF-8")


def test_unknown_format(r2l, tmp_path):
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"PK")
    fails(r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"), "r.xlsx: unknown table format '.xlsx'")


def test_parquet_and_jsonl_inputs(r2l, tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "befund": ["Keine Fraktur.", "Weber-B-Fraktur."]})
    frame.to_parquet(tmp_path / "r.parquet")
    frame.to_json(tmp_path / "r.jsonl", orient="records", lines=True, force_ascii=False)
    for name in ("r.parquet", "r.jsonl"):
        out = tmp_path / name.replace(".", "_")
        result = r2l("label", "ankle-fracture", tmp_path / name, "-o", out, "--id-col", "id", "--text-col", "befund")
        assert result.exit_code == 0, result.output
        labels = pd.read_csv(out / "labels.csv", dtype={"report_id": str})
        assert labels["report_id"].tolist() == ["1", "2"] and labels["fracture"].tolist() == [0, 1]


def test_empty_and_overlong_reports_fail_per_row(r2l, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "   ", "Weber-B-Fraktur. " * 100])
    result = r2l("label", "ankle-fracture", path, "-o", tmp_path / "out", "--max-chars", "1000", "--no-progress")
    assert result.exit_code == 3, "finished, but some rows failed"
    assert "1 labelled, 2 failed" in result.output
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["status"].tolist() == ["labelled", "failed", "failed"]
    assert labels["reason"][1] == "empty report"
    assert labels["reason"][2] == "report has 1700 characters, more than max_chars=1000"
    assert labels["attempts"].tolist() == [1, 0, 0]


def test_failed_run_leaves_earlier_output_intact(r2l, tmp_path):
    good = write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "Weber-B-Fraktur."])
    assert r2l("label", "ankle-fracture", good, "-o", tmp_path / "out", "--no-progress").exit_code == 0
    before = (tmp_path / "out" / "labels.csv").read_bytes()
    bad = write_reports(tmp_path / "bad.csv", ["a", "b"], ids=["x", "x"])
    fails(r2l("label", "ankle-fracture", bad, "-o", tmp_path / "out"), "bad.csv")
    assert (tmp_path / "out" / "labels.csv").read_bytes() == before


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "labels.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_example_refuses_a_folder_in_use(r2l, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    fails(r2l("example", "ankle-fracture", tmp_path), "folder is not empty")
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_example_can_be_rewritten(r2l, tmp_path):
    for _ in range(2):
        result = r2l("example", "ankle-fracture", tmp_path / "demo", "--n-reports", "5", "--image-size", "64")
        assert result.exit_code == 0, result.output


def test_not_a_label_store(r2l, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur."])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "labels.sqlite").write_text("this is not sqlite" * 100)
    fails(r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"), "labels.sqlite: not a usable label store")
