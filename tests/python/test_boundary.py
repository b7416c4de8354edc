"""Errors, zero-copy tensors, exceptions inside the block, and a long loop of traces."""

import gc
import resource

import pytest
import torch

import nnterp
from conftest import hf_inputs, hf_model

PROMPT = "The Eiffel Tower is in the city of"


def test_out_of_order_reads_raise_the_cpp_message(default_model):
    model = default_model
    with pytest.raises(nnterp.OutOfOrderError) as info:
        with model.trace(PROMPT):
            model.layers_output[2]
            model.layers_input[1]
    e = info.value
    assert isinstance(e, nnterp.Error) and isinstance(e, ValueError)
    assert e.subject == "layers.1.input"
    assert "already passed this point (it is at layers.2.output)" in str(e)
    assert "forward order" in e.hint


def test_wrong_shape_writes_raise_a_shape_error(default_model):
    model = default_model
    with pytest.raises(nnterp.ShapeError, match=r"layers\.1\.output: a write must keep shape \[1, \d+, 128\]"):
        with model.trace(PROMPT):
            model.layers_output[1] = torch.zeros(3, 128)
            model.logits


def test_bad_indices_and_places(default_model):
    model = default_model
    with pytest.raises(nnterp.InvalidArgumentError, match=r"layer index out of range: the model has 4 layers \(0\.\.3, or -1\.\.-4 from the end\)"):
        with model.trace(PROMPT):
            model.layers_output[4]
    with pytest.raises(nnterp.InvalidArgumentError, match="out of range"):
        with model.trace(PROMPT):
            model.layers_output[-5]
    with pytest.raises(TypeError, match="layer index"):
        with model.trace(PROMPT):
            model.layers_output["3"]
    with pytest.raises(nnterp.InvalidArgumentError, match="inside `with model.trace"):
        model.layers_output[0]
    with pytest.raises(nnterp.InvalidArgumentError, match="no router"):
        with model.trace(PROMPT):
            model.router_logits[0]
    with pytest.raises(TypeError, match="expected a prompt"):
        with model.trace(3.5):
            pass
    with pytest.raises(nnterp.InvalidArgumentError, match="do not nest"):
        with model.trace(PROMPT):
            with model.trace(PROMPT):
                pass
    with pytest.raises(nnterp.NotFoundError):
        nnterp.StandardizedTransformer("/nonexistent/model")
    assert len(model.layers_output) == 4
    with model.trace(PROMPT):
        assert torch.equal(model.layers_output[-1], model.layers_output[3])


def test_tensors_cross_the_boundary_without_copies(default_model):
    model = default_model
    with model.trace(PROMPT):
        first = model.layers_output[1]
        again = model.layers_output[1]  # the same point while the forward waits there
        assert first.data_ptr() == again.data_ptr()
        replacement = torch.randn_like(first)
        model.layers_output[1] = replacement
        assert model.layers_output[1].data_ptr() == replacement.data_ptr()  # the engine holds our tensor
        logits = model.logits
    assert torch.equal(logits, model.dump(PROMPT, ["logits"])["logits"]) is False
    mask = model.tokenizer(PROMPT, return_tensors="pt")
    with model.trace(mask):
        assert model.input_ids.data_ptr() == mask["input_ids"].data_ptr()


def test_an_exception_abandons_the_forward_and_propagates(default_model):
    model = default_model
    expected = model.dump(PROMPT, ["logits"])["logits"]
    with pytest.raises(ZeroDivisionError):
        with model.trace(PROMPT):
            model.layers_output[1]
            1 / 0
    with pytest.raises(KeyboardInterrupt):
        with model.trace(PROMPT):
            model.attention_probabilities[0]
            raise KeyboardInterrupt
    with model.trace(PROMPT) as tracer:
        pass
    assert torch.equal(tracer.output, expected)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def test_a_thousand_traces_keep_memory_flat_and_the_model_correct(default_model):
    model = default_model
    expected = model.dump(PROMPT, ["logits"])["logits"]

    def one(i):
        try:
            with model.trace(PROMPT):
                h = model.layers_output[1].save()
                model.layers_output[2][:, -1] += 0.0
                if i % 10 == 0:
                    raise RuntimeError("every 10th body fails")
                out = model.logits.save()
            return h, out
        except RuntimeError:
            return None

    for i in range(100):  # warm-up: allocator pools, fiber stacks
        one(i)
    gc.collect()
    start = rss_bytes()
    for i in range(1000):
        one(i)
    gc.collect()
    growth = rss_bytes() - start
    assert growth < 8 << 20, f"RSS grew by {growth / 2**20:.1f} MiB over 1,000 traces"
    with model.trace(PROMPT) as tracer:
        pass
    assert torch.equal(tracer.output, expected)


def test_hf_batches_and_tokenizer_outputs_are_inputs(default_model):
    model = default_model
    enc = model.tokenizer(["a b c", "d"], return_tensors="pt")
    assert enc.input_ids.shape[0] == 2 and enc.attention_mask[1, 0] == 0  # left padded
    with model.trace(enc) as tracer:
        pass
    with model.trace(["a b c", "d"]) as by_prompts:
        pass
    assert torch.equal(tracer.output, by_prompts.output)
    ids = model.tokenizer.encode("a b c")
    assert model.tokenizer.decode(ids, skip_special_tokens=True) == "a b c"
    assert model.tokenizer.convert_ids_to_tokens(ids[-1]) == model.tokenizer.convert_ids_to_tokens([ids[-1]])[0]
    arch_inputs = hf_inputs("gpt2")
    with hf_model("gpt2").trace(arch_inputs["input_ids"][1]) as single_row:  # [T] ids: one row
        pass
    assert single_row.output.shape[0] == 1


def test_long_cpp_work_lets_other_python_threads_run(default_model):
    """The GIL is released while C++ runs with no Python (here a collection), so another thread
    progresses meanwhile. A long switch interval keeps the GIL with the caller unless released."""
    import sys
    import threading

    model = default_model
    prompts = [f"prompt number {i} says something" for i in range(16)]
    state = {"count": 0, "done": False}

    def spin():
        while not state["done"]:
            state["count"] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    worker = threading.Thread(target=spin)
    try:
        worker.start()
        before = state["count"]
        nnterp.collect_token_activations(model, prompts, batch_size=4)
        during = state["count"] - before
    finally:
        state["done"] = True
        sys.setswitchinterval(interval)
        worker.join()
    assert during > 1000, f"the other thread ran {during} iterations during the collection"
