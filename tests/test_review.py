"""`r2l review`: the HTML page in a real headless Chromium (cards, <mark> offsets, filters, keys, a screenshot),
the Label Studio import files, and a Label Studio export brought back as gold that `r2l eval-labels` reads."""

import json
import shutil
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from conftest import write_reports

TEXTS = {
    "a": "Befund: Weber-B-Fraktur der distalen Fibula. Straße frei.",
    "b": "V.a. Fraktur des Außenknöchels.  Fraktur?\nKeine Fraktur der Tibia.",
    "c": "Keine Fraktur. <script>alert('x')</script> Größe regelrecht.",
    "d": "OSG unauffällig.",
    "e": "",
    "f": "Fraktur des Innenknöchels. Fraktur des Innenknöchels.",
}
GOLD = {"a": 1, "b": 1, "c": 1, "d": 0, "f": 1}  # c disagrees with the rules' 0


@pytest.fixture
def reviewed(r2l, tmp_path):
    reports = write_reports(tmp_path / "reports.csv", list(TEXTS.values()), list(TEXTS))
    out = tmp_path / "out"
    assert r2l("label", "ankle-fracture", reports, "-o", out, "--no-progress").exit_code == 3  # the empty one
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"report_id": list(GOLD), "gold_fracture": list(GOLD.values())}).to_csv(gold, index=False)
    result = r2l("review", out, "--reports", reports, "--gold", gold)
    assert result.exit_code == 0, result.output
    assert "6 reports: 1 failed, 1 with a label of confidence < 0.6, 1 disagreeing" in result.output
    return out


def test_page_in_headless_chromium(reviewed, browser, tmp_path):
    page_file = reviewed / "review.html"
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(page_file.as_uri())
    assert requested == [page_file.as_uri()]  # self-contained: nothing else is fetched
    assert page.locator("article.card").count() == len(TEXTS)
    assert page.evaluate("document.scripts.length") == 1  # the report's <script> is text, not a script
    assert "<script>alert('x')</script>" in page.locator("article.card", has_text="Größe").inner_text()

    marks = page.evaluate(
        """() => [...document.querySelectorAll('mark')].map(m => {
            const pre = m.closest('pre'), range = document.createRange();
            range.setStart(pre, 0); range.setEndBefore(m);
            return {id: m.closest('article').querySelector('h2').textContent, at: range.toString().length,
                    start: +m.dataset.start, end: +m.dataset.end, text: m.textContent,
                    labels: m.dataset.labels, report: pre.textContent};
        })"""
    )
    assert {m["id"] for m in marks} == {"a", "b", "c", "f"}
    for mark in marks:
        assert mark["report"] == TEXTS[mark["id"]]  # the text as written, umlauts and all
        assert mark["at"] == mark["start"] and TEXTS[mark["id"]][mark["start"] : mark["end"]] == mark["text"]
        assert mark["labels"] == "fracture"
    uncertain = [TEXTS["b"].index("Fraktur"), TEXTS["b"].index("Fraktur?")]  # not the negated third one
    assert [m["start"] for m in marks if m["id"] == "b"] == uncertain
    assert [m["start"] for m in marks if m["id"] == "f"] == [0, TEXTS["f"].rindex("Fraktur")]

    def shown():
        return [h.inner_text() for h in page.locator("article.card:visible h2").all()]

    page.get_by_role("button", name="failed").click()
    assert shown() == ["e"]
    page.keyboard.press("3")  # low confidence: b is uncertain (0.5)
    assert shown() == ["b"]
    page.keyboard.press("4")
    assert shown() == ["c"]
    assert page.locator("article.card:visible tr.disagree .against").inner_text() == "gold 1"
    page.keyboard.press("1")
    assert shown() == list(TEXTS)
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator("article.current h2").inner_text() == "c"
    page.keyboard.press("ArrowUp")
    assert page.evaluate("document.activeElement.querySelector('h2').textContent") == "b"
    screenshot = tmp_path / "review.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_label_studio_files_follow_its_formats(reviewed):
    tasks = json.loads((reviewed / "label_studio_tasks.json").read_text())
    assert [t["data"]["report_id"] for t in tasks][:2] == ["e", "b"]  # failed first, then lowest confidence
    assert "predictions" not in tasks[0]
    [prediction] = tasks[1]["predictions"]
    assert prediction["score"] == 0.5 and prediction["model_version"].startswith("rules rules-")
    choice, *spans = prediction["result"]
    assert choice == {
        "id": "fracture",
        "from_name": "fracture",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["1"]},
        "score": 0.5,
    }
    text = tasks[1]["data"]["text"]
    assert [s["value"]["start"] for s in spans] == [text.index("Fraktur"), text.index("Fraktur?")]
    for span in spans:
        assert span["type"] == "labels" and span["value"]["labels"] == ["fracture"]
        assert text[span["value"]["start"] : span["value"]["end"]] == span["value"]["text"] == "Fraktur"
    config = ET.fromstring((reviewed / "label_studio_config.xml").read_text())
    assert config.find("Text").attrib == {"name": "text", "value": "$text"}
    choices = config.find("Choices")
    assert choices.attrib["name"] == "fracture" and choices.attrib["toName"] == "text"
    assert [c.attrib["value"] for c in choices] == ["0", "1"]


def export_of(tasks: list[dict], corrections: dict[str, str]) -> list[dict]:
    """What Label Studio exports after annotators accepted the predictions, corrected some, skipped one."""
    exported = []
    for number, task in enumerate(tasks, 1):
        rid = task["data"]["report_id"]
        result = [dict(r) for r in task.get("predictions", [{"result": []}])[0]["result"] if r["type"] == "choices"]
        if rid in corrections:
            result = [{**result[0], "value": {"choices": [corrections[rid]]}}] if result else []
            result = result or [
                {
                    "from_name": "fracture",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": [corrections[rid]]},
                }
            ]
        annotation = {"id": 100 + number, "result": result, "was_cancelled": rid == "d", "ground_truth": False}
        exported.append({"id": number, "data": task["data"], "annotations": [annotation], "predictions": []})
    return exported


def test_a_label_studio_export_becomes_gold_for_eval_labels(r2l, reviewed, tmp_path):
    tasks = json.loads((reviewed / "label_studio_tasks.json").read_text())
    export = tmp_path / "export.json"
    export.write_text(json.dumps(export_of(tasks, {"c": "1", "e": "0"})))
    result = r2l("review", "--import", export, "-o", tmp_path / "gold.csv")
    assert result.exit_code == 0, result.output
    assert "gold for 5 reports of task ankle-fracture; 1 without a finished annotation skipped" in result.output
    gold = pd.read_csv(tmp_path / "gold.csv", dtype={"report_id": str}).set_index("report_id")["gold_fracture"]
    assert gold.to_dict() == {"e": 0, "b": 1, "a": 1, "c": 1, "f": 1}

    evaluated = r2l("eval-labels", reviewed / "labels.csv", tmp_path / "gold.csv", "-o", tmp_path / "eval")
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads((tmp_path / "eval" / "label_eval.json").read_text())
    assert summary["compared"] == 4 and summary["failed"] == 1  # e failed labelling; d was skipped in Label Studio
    disagreements = pd.read_csv(tmp_path / "eval" / "disagreements.csv", dtype={"report_id": str})
    assert disagreements["report_id"].tolist() == ["c"]


def test_bad_exports_are_named(r2l, reviewed, tmp_path):
    tasks = json.loads((reviewed / "label_studio_tasks.json").read_text())
    broken = export_of(tasks, {"a": "maybe", "e": "0"})
    export = tmp_path / "export.json"
    export.write_text(json.dumps(broken))
    result = r2l("review", "--import", export)
    number = [t["data"]["report_id"] for t in tasks].index("a") + 1
    assert result.exit_code == 1
    assert f"Error: {export}: task {number} (report 'a'): label 'fracture' is ['maybe'], expected one of 0, 1" in (
        result.output
    )
    export.write_text("{not json")
    assert "not a Label Studio JSON export" in r2l("review", "--import", export).output
    assert r2l("review", reviewed).exit_code == 2  # no --reports


def test_chest_states_round_trip(r2l, tmp_path):
    from report2label.plugins.chest_xray.example import write_example

    write_example(tmp_path / "ex", seed=1, n_reports=6, image_size=64)
    reports = tmp_path / "ex" / "reports.csv"
    assert r2l("label", "chest-xray", reports, "-o", tmp_path / "out", "--no-progress").exit_code == 0
    assert r2l("review", tmp_path / "out", "--reports", reports).exit_code == 0
    config = ET.fromstring((tmp_path / "out" / "label_studio_config.xml").read_text())
    controls = {c.attrib["name"]: [v.attrib["value"] for v in c] for c in config.iter("Choices")}
    assert controls["pneumonia"] == ["positive", "negative", "uncertain", "not_mentioned"]
    assert controls["normal"] == ["0", "1"]
    tasks = json.loads((tmp_path / "out" / "label_studio_tasks.json").read_text())
    exported = []
    for number, task in enumerate(tasks, 1):  # the annotator leaves "not mentioned" findings unticked
        result = [r for r in task["predictions"][0]["result"] if r["type"] == "choices"]
        result = [r for r in result if r["value"]["choices"] != ["not_mentioned"]]
        exported.append({"id": number, "data": task["data"], "annotations": [{"result": result}]})
    export = tmp_path / "export.json"
    export.write_text(json.dumps(exported))
    assert r2l("review", "--import", export, "-o", tmp_path / "gold.csv").exit_code == 0
    evaluated = r2l("eval-labels", tmp_path / "out" / "labels.csv", tmp_path / "gold.csv", "-o", tmp_path / "eval")
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads((tmp_path / "eval" / "label_eval.json").read_text())
    assert summary["gold_format"] == "states" and len(summary["per_label"]) == 14
    assert all(r["metrics"]["accuracy"]["value"] == 1.0 for r in summary["per_label"])  # blank: not mentioned
    shutil.rmtree(tmp_path / "ex")


def test_a_second_run_marks_disagreements_and_missing_reports_are_named(r2l, reviewed, tmp_path):
    other = pd.read_csv(reviewed / "labels.csv", dtype={"report_id": str})
    other.loc[other["report_id"] == "a", "fracture"] = 0
    other.to_csv(tmp_path / "other.csv", index=False)
    reports = tmp_path / "reports.csv"
    result = r2l("review", reviewed, "--reports", reports, "--against", tmp_path / "other.csv", "-o", tmp_path / "v")
    assert result.exit_code == 0, result.output
    assert "1 disagreeing" in result.output and (tmp_path / "v" / "review.html").is_file()
    assert (
        'data-disagree="1"'
        in (tmp_path / "v" / "review.html").read_text().split("<h2>a</h2>")[0].rsplit("<article", 1)[1]
    )
    write_reports(tmp_path / "fewer.csv", [TEXTS["a"]], ["a"])
    missing = r2l("review", reviewed, "--reports", tmp_path / "fewer.csv")
    assert missing.exit_code == 1
    assert f"Error: {tmp_path / 'fewer.csv'}: no report 'b', which labels.csv holds" in missing.output
