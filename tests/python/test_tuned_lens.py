"""The tuned lens from Python (nnterp.TunedLens, tuned_lens, train_tuned_lens) on the default model."""

import os

import pytest
import torch

import nnterp

LENS = os.path.join(os.path.dirname(__file__), "..", "..", "models", "default", "tuned_lens.safetensors")
PROMPTS = ["The capital of France is Paris", "People in Spain speak Spanish", "The sky is blue"]


def test_untrained_lens_is_the_logit_lens(default_model):
    zero = nnterp.TunedLens.identity(default_model)
    assert torch.equal(nnterp.tuned_lens(default_model, PROMPTS, zero), nnterp.logit_lens(default_model, PROMPTS))


def test_committed_lens_loads_and_beats_the_logit_lens(default_model):
    lens = nnterp.TunedLens.load(LENS, default_model)
    assert (lens.num_layers, lens.hidden_size) == (4, 128) and lens.steps > 0
    probs = nnterp.tuned_lens(default_model, "The capital of France is", lens)
    assert probs.shape == (1, 4, 1471)
    tuned = nnterp.lens_kl_to_final(default_model, PROMPTS, lens)
    plain = nnterp.lens_kl_to_final(default_model, PROMPTS, nnterp.TunedLens.identity(default_model))
    assert (tuned[:-1] < plain[:-1]).all()


def test_train_save_load_and_resume(default_model, tmp_path):
    seen = []
    lens = nnterp.train_tuned_lens(default_model, PROMPTS, steps=3, batch_size=2, checkpoint=tmp_path / "ckpt.safetensors",
                                   on_step=lambda step, steps, loss: seen.append((step, steps)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    lens.save(tmp_path / "lens.safetensors")
    back = nnterp.TunedLens.load(tmp_path / "lens.safetensors", default_model)
    assert all(torch.equal(lens.weight(l), back.weight(l)) for l in range(4))
    resumed = nnterp.train_tuned_lens(default_model, PROMPTS, steps=3, batch_size=2,
                                      checkpoint=tmp_path / "ckpt.safetensors", resume=True)
    assert all(torch.equal(lens.weight(l), resumed.weight(l)) for l in range(4))


def test_bad_lens_file_names_the_file(default_model, tmp_path):
    nnterp.save_safetensors(str(tmp_path / "bad.safetensors"), {"x": torch.zeros(2)})
    with pytest.raises(nnterp.Error, match="bad.safetensors"):
        nnterp.TunedLens.load(tmp_path / "bad.safetensors", default_model)
