"""The random-weight models tests and benchmarks write for themselves (no download)."""

import pytest

from report2label.testing.random_hf import SIZES, write_random_llama


def test_8b_shape_is_the_size_of_llama_3_8b():
    assert 7.9e9 < SIZES["8b"].parameters < 8.1e9


def test_tiny_hf_llama_loads_and_generates_with_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    folder = write_random_llama(tmp_path / "llama", "tiny")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    messages = [{"role": "system", "content": "Anweisung"}, {"role": "user", "content": "Keine Fraktur. Außenknöchel"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert tokenizer.decode(ids[0]) == text, "every byte is a token: text round-trips"
    assert "Anweisung" in text and text.endswith("<|im_start|>assistant\n")
    assert model.num_parameters() == SIZES["tiny"].parameters
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3
