"""The Python trace's cost over the C++ trace, in the same process, on the embedded default model:
an empty `with model.trace(ids):` block, and one reading every point, against a C++ trace body
doing the same (nnterp._nnterp._time_cpp_trace). Medians of --reps runs, interleaved.

    PYTHONPATH=build/python python3 bench/bench_python_trace.py [--reps N] [--model DIR]
"""

import argparse
import statistics
import time

import nnterp
from nnterp import _nnterp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    threads = nnterp.configure_threads()
    model = nnterp.StandardizedTransformer(args.model)
    ids = model.tokenizer("The Eiffel Tower is in the city of", return_tensors="pt")["input_ids"]
    L = model.num_layers
    accessors = ["layers_input", "attentions_input", "queries", "keys", "values", "attention_probabilities",
                 "attentions_output", "mlps_input", "mlps_output", "layers_output"]
    suffixes = ["input", "attn_input", "q", "k", "v", "attn_probs", "attn_output", "mlp_input", "mlp_output", "output"]
    names = ["embed.output"] + [f"layers.{i}.{s}" for i in range(L) for s in suffixes] + ["ln_final.output", "logits"]

    def python_empty():
        with model.trace(ids):
            pass

    def python_all():
        with model.trace(ids):
            model.token_embeddings
            for i in range(L):
                for a in accessors:
                    getattr(model, a)[i]
            model.ln_final.output
            model.logits

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    results = {k: [] for k in ("cpp_empty", "py_empty", "cpp_all", "py_all")}
    for _ in range(args.reps):  # interleaved, so drifts hit every case alike
        results["cpp_empty"].append(_nnterp._time_cpp_trace(model._engine, ids, [], 1))
        results["py_empty"].append(timed(python_empty))
        results["cpp_all"].append(_nnterp._time_cpp_trace(model._engine, ids, names, 1))
        results["py_all"].append(timed(python_all))
    med = {k: statistics.median(v) * 1e6 for k, v in results.items()}
    fixed = med["py_empty"] - med["cpp_empty"]
    per_point = ((med["py_all"] - med["cpp_all"]) - fixed) / len(names)
    print(f"default model ({L} layers), {ids.shape[1]} tokens, {threads} BLAS threads, median of {args.reps} interleaved runs")
    print(f"{'trace':<28}{'C++ us':>10}{'Python us':>12}{'Python - C++':>14}")
    print(f"{'empty body':<28}{med['cpp_empty']:>10.1f}{med['py_empty']:>12.1f}{fixed:>14.1f}")
    print(f"{f'reading all {len(names)} points':<28}{med['cpp_all']:>10.1f}{med['py_all']:>12.1f}{med['py_all'] - med['cpp_all']:>14.1f}")
    print(f"fixed cost of a Python trace: {fixed:.1f} us (goal <= 50); per point read: {per_point:.2f} us (goal <= 5)")


if __name__ == "__main__":
    main()
