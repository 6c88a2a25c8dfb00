"""Task specs: answer validation, prompt variants and their hashes, JSON round trip."""

import json

import pytest

from report2label.core.image_model import ImageModelSpec
from report2label.core.task import PromptVariant
from report2label.plugins.ankle_fracture import TASK


@pytest.mark.parametrize(
    "raw, answer",
    [
        ('{"fracture": 1}', {"fracture": 1}),
        ('  {"fracture":0}\n', {"fracture": 0}),
        ('```json\n{"fracture": 1}\n```', {"fracture": 1}),
        ("1", {"fracture": 1}),
        ("0", {"fracture": 0}),
    ],
)
def test_valid_answers(raw, answer):
    assert TASK.validate_answer(raw).answer == answer


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "empty answer"),
        ("Ja, Fraktur.", "not JSON"),
        ('{"fracture": 2}', "field 'fracture': Input should be 0 or 1"),
        ('{"fracture": true}', "field 'fracture': Value error, must be the integer 0 or 1"),
        ('{"fracture": "1"}', "must be the integer 0 or 1"),
        ('{"fracture": 1.0}', "must be the integer 0 or 1"),
        ('{"fracture": 1, "confidence": 0.9}', "field 'confidence': Extra inputs are not permitted"),
        ("{}", "field 'fracture': Field required"),
        ("[1]", "expected a JSON object, got list"),
    ],
)
def test_invalid_answers_say_why(raw, reason):
    checked = TASK.validate_answer(raw)
    assert checked.answer is None
    assert reason in checked.reason


def test_answer_schema_is_a_closed_enum():
    schema = TASK.answer_schema
    assert schema["properties"]["fracture"]["enum"] == [0, 1]
    assert schema["required"] == ["fracture"] and schema["additionalProperties"] is False


def test_three_prompt_variants_with_stable_distinct_hashes():
    names = [p.name for p in TASK.prompts]
    assert names == ["de-zero-shot", "de-few-shot", "en-zero-shot"]
    hashes = {p.hash for p in TASK.prompts}
    assert len(hashes) == 3
    again = PromptVariant.model_validate(TASK.prompts[0].model_dump(exclude={"hash"}))
    assert again.hash == TASK.prompts[0].hash
    changed = TASK.prompts[0].model_copy(update={"instructions": TASK.prompts[0].instructions + " "})
    assert PromptVariant.model_validate(changed.model_dump(exclude={"hash"})).hash != TASK.prompts[0].hash


def test_messages_put_instructions_first_and_report_last():
    few_shot = TASK.prompt("de-few-shot")
    messages = few_shot.messages("Weber-B-Fraktur {mit Klammern}")
    assert messages[0] == {"role": "system", "content": few_shot.instructions}
    assert [m["role"] for m in messages[1:-1]] == ["user", "assistant"] * len(few_shot.examples)
    assert messages[-1]["role"] == "user" and "Weber-B-Fraktur {mit Klammern}" in messages[-1]["content"]
    assert json.loads(messages[2]["content"]) == few_shot.examples[0].answer


def test_ankle_definition_is_in_the_prompts():
    german = TASK.prompt("de-zero-shot").instructions
    for phrase in ("distaler Tibia", "distaler Fibula", "Talus", "Frakturverdacht", "Frakturlinie", "Fuß"):
        assert phrase in german


def test_unknown_prompt_variant_lists_the_choices():
    with pytest.raises(Exception, match="de-zero-shot, de-few-shot, en-zero-shot"):
        TASK.prompt("nope")


def test_spec_serialises_to_json_with_schema_and_recipe():
    data = json.loads(TASK.model_dump_json())
    assert data["answer_schema"]["properties"]["fracture"]["enum"] == [0, 1]
    assert data["labels"] == ["fracture"]
    recipe = ImageModelSpec.model_validate(data["recipe"])
    assert recipe == TASK.recipe


def test_recipe_is_the_study_densenet():
    r = TASK.recipe
    assert (r.architecture, r.in_chans, r.image_size, r.outputs) == ("densenet121", 1, 640, "binary")
    assert (r.batch_size, r.epochs, r.select_metric) == (32, 200, "mcc")
    assert (r.optimisation.lr, r.optimisation.max_lr, r.optimisation.schedule) == (1e-5, 5e-3, "onecycle")
    assert r.preprocessing.foreground_range == (0.3, 0.7) and r.preprocessing.interpolation == "area"
    assert (r.augmentation.rotate_degrees, r.augmentation.rotate_p, r.augmentation.hflip_p) == (15, 0.8, 0.5)
    assert r.augmentation.zoom == (1.0, 1.3) and r.augmentation.crop_fraction == 0.9
