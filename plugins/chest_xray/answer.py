"""The chest X-ray task's answer: 13 CheXpert findings in four states, and Normal derived from them."""

from pydantic import BaseModel, ConfigDict, Field, computed_field

from report2label.core.task import Binary, Finding

FINDINGS: dict[str, str] = {
    "atelectasis": "Atelectasis",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
    "edema": "Edema",
    "enlarged_cardiomediastinum": "Enlarged Cardiomediastinum",
    "fracture": "Fracture",
    "lung_lesion": "Lung Lesion",
    "lung_opacity": "Lung Opacity",
    "pleural_effusion": "Pleural Effusion",
    "pleural_other": "Pleural Other",
    "pneumonia": "Pneumonia",
    "pneumothorax": "Pneumothorax",
    "support_devices": "Support Devices",
}
"""Answer field → CheXpert's name of the finding."""

_STATE = "positive, negative (stated absent), uncertain (suspected, possible) or not_mentioned"


class ChestAnswer(BaseModel):
    """Per finding, what the report says of it; ``normal`` is 1 when none is positive or uncertain."""

    model_config = ConfigDict(extra="forbid")
    atelectasis: Finding = Field(description=_STATE)
    cardiomegaly: Finding = Field(description=_STATE)
    consolidation: Finding = Field(description=_STATE)
    edema: Finding = Field(description=_STATE)
    enlarged_cardiomediastinum: Finding = Field(description=_STATE)
    fracture: Finding = Field(description=_STATE)
    lung_lesion: Finding = Field(description=_STATE)
    lung_opacity: Finding = Field(description=_STATE)
    pleural_effusion: Finding = Field(description=_STATE)
    pleural_other: Finding = Field(description=_STATE)
    pneumonia: Finding = Field(description=_STATE)
    pneumothorax: Finding = Field(description=_STATE)
    support_devices: Finding = Field(description=_STATE)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def normal(self) -> Binary:
        """RadReportX's Normal: none of the 13 findings positive or uncertain."""
        return int(all(getattr(self, name) in ("negative", "not_mentioned") for name in FINDINGS))  # type: ignore[return-value]
