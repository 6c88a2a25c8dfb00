"""`r2l compare`: prompt variants × backends on gold labels, a leaderboard, McNemar tests, resumable runs."""

import json
import math

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core import registry
from report2label.core.errors import R2LError
from report2label.core.labelling.compare import BackendRun, mcnemar_exact
from report2label.core.prompt_file import with_prompt_file

PROMPTS = """\
[[variant]]
name = "de-short"
language = "de"
instructions = 'Fraktur des oberen Sprunggelenks? Antworte nur {"fracture": 0} oder {"fracture": 1}.'
report_template = "Befund: {report}"
"""


def test_mcnemar_exact_on_hand_made_cases():
    assert mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 2**10)  # 0.109375
    assert mcnemar_exact(3, 1) == pytest.approx(2 * (1 + 4) / 2**4)  # 0.625
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 2**6)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0
    from scipy.stats import binomtest

    for b, c in ((12, 3), (40, 25), (1, 9), (300, 260)):
        assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
    assert 0 < mcnemar_exact(5000, 4800) < 1 and not math.isnan(mcnemar_exact(5000, 4800))


def test_backend_configurations_are_parsed():
    assert BackendRun.parse("rules") == BackendRun("rules", {})
    run = BackendRun.parse('llamacpp  model="/m/a b.gguf" n_ctx=512 reuse_prefix=false fail_ids=["r1","r2"]')
    assert run == BackendRun(
        "llamacpp", {"model": "/m/a b.gguf", "n_ctx": 512, "reuse_prefix": False, "fail_ids": ["r1", "r2"]}
    )
    assert BackendRun.parse("llamacpp model=/m/x.gguf").options == {"model": "/m/x.gguf"}
    with pytest.raises(R2LError, match="'n_ctx' is not KEY=VALUE"):
        BackendRun.parse("llamacpp n_ctx")


def test_rules_and_llamacpp_over_every_prompt_variant(r2l, tiny_gguf, small_example, tmp_path):
    reports = small_example / "reports.csv"
    table = pd.read_csv(reports, dtype={"report_id": str})
    chosen = pd.concat([table[table["gold_fracture"] == 0].head(1), table[table["gold_fracture"] == 1].head(2)])
    gold = tmp_path / "gold.csv"
    chosen[["report_id", "gold_fracture"]].to_csv(gold, index=False)
    prompts = tmp_path / "prompts.toml"
    prompts.write_text(PROMPTS)
    out = tmp_path / "compare"
    model = tiny_gguf["chatml"]
    args = ("compare", "ankle-fracture", reports, gold, "-o", out, "--backend", "rules", "--backend")
    args += (f"llamacpp model={model} n_threads=1", "--prompt-file", prompts, "--bootstrap", "200", "--no-progress")

    first = r2l(*args)
    assert first.exit_code == 0, first.output
    variants = ("de-zero-shot", "de-few-shot", "en-zero-shot", "de-short")
    names = ["rules", *(f"llamacpp-tiny-chatml__{v}" for v in variants)]
    for text in (*names, "ranked by accuracy", "sensitivity", "kappa", "McNemar", "compare.csv", "best: "):
        assert text in first.output
    summary = json.loads((out / "compare.json").read_text())
    combinations = {c["name"]: c for c in summary["combinations"]}
    assert set(combinations) == set(names) and summary["gold_reports"] == 3 and summary["rank_by"] == "accuracy"
    assert combinations["rules"]["per_label"][0]["metrics"]["accuracy"]["value"] == 1.0  # exact on the example
    assert combinations["rules"]["prompt"] == "" and combinations["rules"]["model"].startswith("rules-")
    for name in names:
        c = combinations[name]
        assert (c["labelled"], c["failed"], c["backend_calls"]) == (3, 0, 3)  # constrained: one call per report
        assert c["reports_per_second"] > 0 and (out / name / "labels.csv").is_file()
        assert (out / name / "disagreements.csv").is_file()
        if name != "rules":
            assert c["model"].startswith("tiny-chatml.gguf@sha256:")
    ranked = summary["combinations"]
    assert [c["rank"] for c in ranked] == [1, 2, 3, 4, 5] and ranked[0]["name"] == summary["best"]
    assert [c["score"] for c in ranked] == sorted((c["score"] for c in ranked), reverse=True)
    assert ranked[0]["mcnemar_vs_best"] is None
    assert all(0 < c["mcnemar_vs_best"]["p"] <= 1 for c in ranked[1:])
    file_variant = with_prompt_file(registry.task("ankle-fracture"), prompts).prompt("de-short")
    stored = pd.read_csv(out / "llamacpp-tiny-chatml__de-short" / "labels.csv")
    assert set(stored["prompt_hash"]) == {file_variant.hash} and set(stored["prompt"]) == {"de-short"}
    leaderboard = pd.read_csv(out / "compare.csv")
    assert len(leaderboard) == 5 and set(leaderboard["combination"]) == set(names)
    for column in ("accuracy_low", "specificity_high", "f1", "kappa_low", "mcnemar_p", "failed", "reports_per_second"):
        assert column in leaderboard.columns
    assert pd.read_csv(out / "gold_reports.csv", dtype=str)["report_id"].tolist() == chosen["report_id"].tolist()

    second = r2l(*args)  # every label is stored: the backends are asked nothing
    assert second.exit_code == 0, second.output
    again = {c["name"]: c for c in json.loads((out / "compare.json").read_text())["combinations"]}
    for name in names:
        assert (again[name]["backend_calls"], again[name]["reused"]) == (0, 3)
        assert again[name]["reports_per_second"] == combinations[name]["reports_per_second"]  # kept from the run
        assert again[name]["per_label"] == combinations[name]["per_label"]


TEXTS = {  # text, gold; rules right on r1–r6, wrong on r7; the fake backend says 1 for any "fraktur"
    "r1": ("Keine Fraktur.", 0),
    "r2": ("Weber-B-Fraktur.", 1),
    "r3": ("Fraktur ausgeschlossen.", 0),
    "r4": ("Kalkaneusfraktur.", 0),
    "r5": ("OSG unauffällig.", 0),
    "r6": ("V.a. Fraktur des Innenknöchels.", 1),
    "r7": ("Z.n. Plattenosteosynthese der Fibula. Keine Frakturlinie mehr abgrenzbar.", 1),
}


def test_mcnemar_of_the_best_against_the_others_on_a_hand_made_case(outside_plugin, r2l, tmp_path):
    reports = write_reports(
        tmp_path / "reports.csv", [t for t, _ in TEXTS.values()] + ["Weber-C-Fraktur."], [*TEXTS, "r8"]
    )
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"report_id": list(TEXTS), "fracture": [g for _, g in TEXTS.values()]}).to_csv(gold, index=False)
    log, out = tmp_path / "asked.jsonl", tmp_path / "out"
    args = ("compare", "ankle-fracture", reports, gold, "-o", out, "--backend", "rules", "--backend", "fake")
    args += ("-O", f"log={log}", "--prompt", "de-zero-shot", "--prompt", "en-zero-shot", "--no-progress")
    result = r2l(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "compare.json").read_text())
    rules, *fakes = summary["combinations"]
    assert rules["name"] == "rules" and rules["options"] == {}  # -O goes to the backends that take a prompt
    assert rules["per_label"][0]["metrics"]["accuracy"]["value"] == pytest.approx(6 / 7)
    assert [f["name"] for f in fakes] == ["fake__de-zero-shot", "fake__en-zero-shot"]
    for fake in fakes:
        assert fake["per_label"][0]["metrics"]["accuracy"]["value"] == pytest.approx(4 / 7)
        # rules alone right on r1, r3, r4; the fake alone on r7: p = 2 * (1 + 4) / 16
        assert fake["mcnemar_vs_best"] == {"best_only_right": 3, "other_only_right": 1, "p": pytest.approx(0.625)}
        assert fake["per_label"][0]["mcnemar_vs_best"]["p"] == pytest.approx(0.625)
        assert fake["backend_calls"] == 7
    assert "0.625" in result.output
    wrong = pd.read_csv(out / "rules" / "disagreements.csv", dtype={"report_id": str})
    assert wrong[["report_id", "label", "predicted", "gold"]].values.tolist() == [["r7", "fracture", 0, 1]]
    assert wrong["text"][0] == TEXTS["r7"][0]
    assert pd.read_csv(out / "fake__de-zero-shot" / "disagreements.csv")["report_id"].tolist() == ["r1", "r3", "r4"]
    asked = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert sorted(asked) == sorted([*TEXTS] * 2)  # only the gold-labelled reports; r8 is not asked

    second = r2l(*args)
    assert second.exit_code == 0, second.output
    assert len(log.read_text().splitlines()) == 14  # nothing asked again
    assert all(c["backend_calls"] == 0 for c in json.loads((out / "compare.json").read_text())["combinations"])


CHEST = {  # text; gold in CheXpert's codes (1, 0, -1, blank) for four findings
    "c1": ("Heart size is normal. No pleural effusion or pneumothorax.", {"Cardiomegaly": 0, "Pleural Effusion": 0}),
    "c2": ("Small left pleural effusion. Possible atelectasis.", {"Pleural Effusion": 1, "Atelectasis": -1}),
    "c3": ("Cardiomegaly. Pacemaker leads in place.", {"Cardiomegaly": 1, "Support Devices": 0}),  # rules: 1
    "c4": ("No acute findings.", {}),
}


def test_a_multi_label_task_with_states_and_a_failing_backend(outside_plugin, r2l, tmp_path):
    reports = write_reports(tmp_path / "reports.csv", [t for t, _ in CHEST.values()], list(CHEST))
    columns = ("Cardiomegaly", "Pleural Effusion", "Atelectasis", "Support Devices")
    gold = tmp_path / "gold.csv"
    pd.DataFrame(
        [{"report_id": i, **{c: g.get(c) for c in columns}} for i, (_, g) in CHEST.items()]
    ).convert_dtypes().to_csv(gold, index=False)
    out = tmp_path / "out"
    args = ("compare", "chest-xray", reports, gold, "-o", out, "--backend", "rules", "--backend", "fake")
    result = r2l(*args, "--prompt", "radreportx_zero_shot", "--uncertain", "ignore", "--no-progress")
    assert result.exit_code == 3, result.output  # the fake backend's answers are invalid for this task: failed
    for text in ("ranked by micro-F1 over labels", "mean accuracy", "micro-F1", "per label", "skipped, no gold"):
        assert text in result.output
    summary = json.loads((out / "compare.json").read_text())
    assert summary["gold_format"] == "states" and summary["rank_by"] == "f1"
    assert summary["evaluated"] == ["atelectasis", "cardiomegaly", "pleural_effusion", "support_devices"]
    assert "normal" in summary["skipped"]
    rules, fake = summary["combinations"]
    assert rules["name"] == "rules" and fake["name"] == "fake__radreportx_zero_shot"
    per_label = {r["label"]: r for r in rules["per_label"]}
    assert per_label["atelectasis"]["n"] == 3 and per_label["atelectasis"]["dropped_uncertain"] == 1  # c2: ignored
    assert per_label["support_devices"]["confusion"] == {"tn": 3, "fp": 1, "fn": 0, "tp": 0}
    assert rules["micro_f1"]["value"] == pytest.approx(2 * 2 / (2 * 2 + 1))  # TP 2 (c2, c3), FP 1 (c3)
    assert rules["mean_accuracy"]["value"] == pytest.approx((1 + 1 + 1 + 0.75) / 4)
    assert rules["micro_f1"]["low"] <= rules["micro_f1"]["value"] <= rules["micro_f1"]["high"]
    assert (fake["labelled"], fake["failed"], fake["backend_calls"]) == (0, 4, 12)  # three attempts each
    assert fake["mcnemar_vs_best"] == {"best_only_right": 0, "other_only_right": 0, "p": 1.0}
    wrong = pd.read_csv(out / "rules" / "disagreements.csv")
    assert wrong[["report_id", "label", "predicted", "gold"]].values.tolist() == [
        ["c3", "support_devices", "positive", "negative"]
    ]


def test_everything_is_checked_before_anything_is_labelled(r2l, tmp_path):
    reports = write_reports(tmp_path / "reports.csv", ["Keine Fraktur.", "Weber-B-Fraktur."])
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"report_id": ["r0", "r1"], "gold_fracture": [0, 1]}).to_csv(gold, index=False)
    out = tmp_path / "out"
    base = ("compare", "ankle-fracture", reports, gold, "-o", out, "--no-progress")
    cases = [
        (("--backend", "nope"), "unknown"),
        (("--backend", "rules", "--backend", "llamacpp model"), "'model' is not KEY=VALUE"),
        (("--backend", f"llamacpp model={reports}"), "not a GGUF file"),
        (("--prompt", "de-long"), "no prompt variant 'de-long'"),
        (("--gold-col", "radiologist"), "no column 'radiologist'"),
    ]
    for extra, message in cases:
        result = r2l(*base, *extra)
        assert result.exit_code == 1 and message in result.output, (extra, result.output)
    pd.DataFrame({"report_id": ["r0", "r9"], "gold_fracture": [0, 1]}).to_csv(gold, index=False)
    missing = r2l(*base)
    assert missing.exit_code == 1 and "1 gold-labelled report not in" in missing.output and "'r9'" in missing.output
    pd.DataFrame({"report_id": ["r0", "r1"], "gold_fracture": [0, "ja"]}).to_csv(gold, index=False)
    bad = r2l(*base)
    assert bad.exit_code == 1 and "row 2 (id 'r1'): 'gold_fracture' is 'ja', expected 0 or 1" in bad.output
    assert not out.exists()
