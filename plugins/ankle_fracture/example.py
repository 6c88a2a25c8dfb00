"""A synthetic ankle study: German reports with gold labels and radiograph-like images.

Everything here is SYNTHETIC: invented report texts and drawn images, for trying the pipeline
end to end without patient data. Reports cover the phenomena the labellers must get right
(negation, suspicion, other bones, malleolar fractures, post-operative states, mixed sentences);
each report has two or three images in which a fracture, when the gold label is 1, is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from report2label.core.atomic import atomic_path
from report2label.core.progress import progress_bar


@dataclass(frozen=True)
class Case:
    name: str
    gold: int
    findings: tuple[str, ...]
    impressions: tuple[str, ...]
    hardware: bool = False


CASES = (
    Case(
        "negation",
        0,
        (
            "Keine Fraktur.",
            "Kein Frakturnachweis.",
            "Kein Anhalt für eine Fraktur.",
            "Ossär intakt.",
            "Kein Nachweis einer Fraktur oder Luxation.",
            "Distale Fibula und Tibia ohne Frakturnachweis.",
            "Keine Fraktur im Bereich des oberen Sprunggelenks.",
            "Kein Hinweis auf eine frische knöcherne Verletzung.",
        ),
        ("Frakturausschluss.", "Fraktur ausgeschlossen.", "Kein Frakturnachweis.", "Unauffälliger ossärer Befund."),
    ),
    Case(
        "other-bone",
        0,
        (
            "Nicht dislozierte Fraktur der Basis des Os metatarsale V. Das OSG ist ossär intakt.",
            "Basisfraktur MT V. Malleolengabel regelrecht.",
            "Fraktur des Kalkaneus ohne Gelenkbeteiligung.",
            "Kalkaneusfraktur. Keine Fraktur im OSG.",
            "Fraktur der Grundphalanx der Großzehe. Sprunggelenk ossär intakt.",
            "Jones-Fraktur am Mittelfuß. Außen- und Innenknöchel intakt.",
        ),
        ("Fraktur des Mittelfußes, OSG ohne Fraktur.", "Keine Fraktur des oberen Sprunggelenks."),
    ),
    Case(
        "healed",
        0,
        (
            "Z.n. Plattenosteosynthese der distalen Fibula bei Weber-B-Fraktur. Die Fraktur ist knöchern durchbaut, "
            "eine Frakturlinie ist nicht mehr abgrenzbar.",
            "Z.n. Schraubenosteosynthese des Innenknöchels. Keine Frakturlinie mehr abgrenzbar.",
            "Einliegende Platte an der Fibula. Der Frakturspalt ist vollständig überbaut und nicht mehr abgrenzbar.",
        ),
        ("Regelrechte Materiallage, konsolidierter Befund.", "Kein Materialbruch, keine Lockerung."),
        hardware=True,
    ),
    Case(
        "weber",
        1,
        (
            "Weber-A-Fraktur der Fibulaspitze.",
            "Weber-B-Fraktur der distalen Fibula mit Dislokation um 2 mm.",
            "Schräg verlaufende Fraktur des Außenknöchels, Typ Weber C.",
            "Fibulafraktur Typ Weber B.",
        ),
        ("Weber-B-Fraktur.", "Fraktur der distalen Fibula.", "Außenknöchelfraktur."),
    ),
    Case(
        "malleolar",
        1,
        (
            "Bimalleoläre Fraktur mit Subluxation des Talus.",
            "Trimalleoläre Luxationsfraktur unter Beteiligung des Volkmann-Dreiecks.",
            "Fraktur des Innenknöchels.",
            "Nicht dislozierte Fraktur des Innenknöchels.",
            "Fraktur des Processus lateralis tali.",
            "Distale Tibiafraktur mit Gelenkbeteiligung.",
        ),
        ("Fraktur im oberen Sprunggelenk.", "OSG-Fraktur, Vorstellung in der Unfallchirurgie empfohlen."),
    ),
    Case(
        "suspected",
        1,
        (
            "V.a. nicht dislozierte Fraktur der Fibulaspitze.",
            "Fragliche Fissur am Außenknöchel.",
            "Eine Fraktur des Innenknöchels ist nicht sicher auszuschließen.",
            "Verdacht auf eine Fraktur des Talus, ggf. CT-Abklärung.",
            "V.a. Fraktur.",
        ),
        ("V.a. Fraktur, ggf. Verlaufskontrolle.", "Frakturverdacht am Außenknöchel."),
    ),
    Case(
        "mixed",
        1,
        (
            "Keine Fraktur der Fibula, jedoch Fraktur des Innenknöchels.",
            "Kein Nachweis einer Fibulafraktur, aber nicht dislozierte Fraktur des Innenknöchels.",
            "Kalkaneusfraktur sowie Fraktur des Außenknöchels.",
            "Basisfraktur MT V sowie Weber-B-Fraktur.",
        ),
        ("Innenknöchelfraktur.", "Fraktur im OSG."),
    ),
    Case(
        "post-op",
        1,
        (
            "Z.n. Plattenosteosynthese bei Weber-B-Fraktur. Frakturspalt noch abgrenzbar.",
            "Z.n. Schraubenosteosynthese einer Innenknöchelfraktur, die Frakturlinie ist noch zart sichtbar.",
            "Z.n. operativer Versorgung einer bimalleolären Fraktur. Regelrechte Materiallage, kein Materialbruch.",
        ),
        ("Noch nicht konsolidierte Fraktur.", "Regelrechte Materiallage."),
        hardware=True,
    ),
)
WEIGHTS = np.array([0.2, 0.12, 0.08, 0.16, 0.14, 0.1, 0.1, 0.1])
HEADERS = (
    "Röntgen OSG {side} in 2 Ebenen.",
    "OSG {side} a.p. und seitlich:",
    "Sprunggelenk {side} in zwei Ebenen.",
)
CLINICAL = (
    "Klinische Angaben: Supinationstrauma beim Sport. Fragestellung: Fraktur?",
    "Fragestellung: Frakturausschluss.",
    "Indikation: Sturz, Schmerzen lateral. Fragestellung: Fraktur? Bandverletzung?",
    "",
    "",
)
FILLERS = (
    "Regelrechte Stellung der Malleolengabel.",
    "Gelenkspalt regelrecht weit.",
    "Kein Gelenkerguss.",
    "Weichteilschwellung über dem Außenknöchel.",
    "Geringe degenerative Veränderungen.",
    "Kleiner plantarer Fersensporn.",
    "Syndesmose nicht erweitert.",
    "Os trigonum als Normvariante.",
)


def _report(rng: np.random.Generator, case: Case) -> str:
    side = rng.choice(["rechts", "links", "re.", "li."])
    parts = [str(rng.choice(HEADERS)).format(side=side)]
    clinical = str(rng.choice(CLINICAL))
    if clinical:
        parts += [clinical, "Befund:"]
    findings = [str(rng.choice(case.findings))] + [
        str(f) for f in rng.choice(FILLERS, rng.integers(0, 3), replace=False)
    ]
    rng.shuffle(findings)
    parts += findings
    parts += ["Beurteilung:", str(rng.choice(case.impressions))]
    return " ".join(parts)


def _radiograph(rng: np.random.Generator, size: int, fracture: bool, hardware: bool, lateral: bool) -> np.ndarray:
    """A radiograph-like ankle in [0, 1]: soft tissue, tibia, fibula and talus; a dark line if fractured."""
    s = size / 256
    canvas = Image.new("F", (size, size), 0.05)
    draw = ImageDraw.Draw(canvas)
    cx = size / 2 + rng.normal(0, 6 * s)
    draw.ellipse([cx - 70 * s, -40 * s, cx + 70 * s, 250 * s], fill=0.25)
    tibia = [(cx - 32 * s, 0), (cx + 12 * s, 0), (cx + 22 * s, 150 * s), (cx - 46 * s, 170 * s), (cx - 44 * s, 150 * s)]
    draw.polygon(tibia, fill=0.72)
    fx = cx + (10 if lateral else 32) * s
    draw.rectangle([fx, 0, fx + 14 * s, 185 * s], fill=0.66)
    draw.ellipse([cx - 42 * s, 160 * s, cx + 34 * s, 222 * s], fill=0.6)
    if hardware:
        draw.rectangle([fx + 12 * s, 60 * s, fx + 20 * s, 160 * s], fill=1.0)
        for y in range(70, 160, 22):
            draw.ellipse([fx + 4 * s, y * s, fx + 28 * s, (y + 5) * s], fill=0.95)
    # Drawn for every image, so the same random stream gives the same anatomy with or without it.
    y, on_fibula, tilt, width = (
        rng.uniform(110, 165) * s,
        rng.random() < 0.6,
        rng.uniform(-12, 12) * s,
        rng.uniform(3, 5),
    )
    if fracture:
        x0, x1 = (fx - 4 * s, fx + 18 * s) if on_fibula else (cx - 48 * s, cx + 14 * s)
        draw.line([(x0, y - tilt), (x1, y + tilt)], fill=0.12, width=max(2, round(width * s)))
    image = canvas.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR, fillcolor=0.05)
    from scipy.ndimage import gaussian_filter  # here: the plugin loads for every r2l command

    pixels = gaussian_filter(np.asarray(image, dtype=np.float32), sigma=0.8 * s) * rng.uniform(0.85, 1.1)
    pixels += rng.normal(0, 0.03, pixels.shape).astype(np.float32)
    return np.clip(pixels, 0, 1)


def _save_png(pixels: np.ndarray, path: Path, sixteen_bit: bool) -> None:
    info = PngInfo()
    info.add_text("Comment", "SYNTHETIC image written by report2label; not a patient image")
    if sixteen_bit:
        image = Image.fromarray((pixels * 65535).astype(np.uint16))
    else:
        image = Image.fromarray((pixels * 255).astype(np.uint8))
    image.save(path, pnginfo=info)


NOTICE = """# Synthetic example data

Everything in this folder is SYNTHETIC, written by `r2l example ankle-fracture`: invented German
report texts and drawn radiograph-like images. It contains no patient data and is not suitable
for any clinical or scientific conclusion.

- `reports.csv`: report_id, patient_id, text, gold_fracture (the label the text was written for),
  case (which phenomenon the report shows), source
- `images.csv`: image (path relative to this folder), report_id, patient_id, view
- `images/`: PNG images, 8- and 16-bit; a fracture line is drawn when gold_fracture is 1
- `pipeline.toml`: the whole study for `r2l run`, set for a quick CPU run
"""


PIPELINE = """# report2label pipeline for the SYNTHETIC example, set for a quick CPU run (small images, few epochs).
# r2l run pipeline.toml   — paths are relative to this file
task = "ankle-fracture"
workdir = "."

[reports]
path = "reports.csv"
gold_col = "gold_fracture"

[images]
path = "images.csv"

[label]
backend = "rules"

[dataset]
seed = 0

[train]
device = "cpu"
image_size = 64
epochs = 8
batch_size = 16

[export]
output = "model.onnx"
"""


def write_example(directory: str | Path, seed: int = 0, n_reports: int = 200, image_size: int = 256) -> dict[str, int]:
    """Write the synthetic study into ``directory``; the same seed gives the same files."""
    directory = Path(directory)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    reports, images = [], []
    patient = 0
    for i in range(n_reports):
        if i == 0 or rng.random() < 0.7:
            patient += 1
        case = CASES[i % len(CASES)] if i < len(CASES) else CASES[rng.choice(len(CASES), p=WEIGHTS / WEIGHTS.sum())]
        reports.append(
            {
                "report_id": f"R{i + 1:05d}",
                "patient_id": f"P{patient:05d}",
                "text": _report(rng, case),
                "gold_fracture": case.gold,
                "case": case.name,
                "source": "synthetic",
                "_hardware": case.hardware,
            }
        )
    with progress_bar("writing example images", total=len(reports)) as advance:
        for report in reports:
            views = ["ap", "lateral", "mortise"][: int(rng.integers(2, 4))]
            for view in views:
                name = f"images/{report['report_id']}_{view}.png"
                pixels = _radiograph(
                    rng, image_size, bool(report["gold_fracture"]), report["_hardware"], view == "lateral"
                )
                _save_png(pixels, directory / name, sixteen_bit=len(images) % 3 == 2)
                images.append(
                    {"image": name, "report_id": report["report_id"], "patient_id": report["patient_id"], "view": view}
                )
            advance(1)
    table = pd.DataFrame(reports).drop(columns="_hardware")
    for name, frame in (("reports.csv", table), ("images.csv", pd.DataFrame(images))):
        with atomic_path(directory / name) as tmp:
            frame.to_csv(tmp, index=False)
    (directory / "README.md").write_text(NOTICE)
    (directory / "pipeline.toml").write_text(PIPELINE)
    return {
        "reports": len(reports),
        "images": len(images),
        "patients": patient,
        "positive_reports": int(table["gold_fracture"].sum()),
    }
