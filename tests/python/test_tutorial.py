"""docs/python.md runs: every ```python block, in order, in one namespace."""

import os
import re

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python.md")


def test_the_tutorial_runs(capsys):
    with open(DOC, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 8, "the tutorial lost its examples"
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "layer 1 output norm" in out and "OutOfOrder" not in out
    assert "layers.1.output -> access points in forward order" in out
    assert namespace["gen"].output.shape[1] == namespace["plain"].shape[1]
