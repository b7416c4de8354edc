"""Plots and tables of the Python library (plotly and pandas: Debian's python3-plotly, python3-pandas)."""

import math

import torch


def plot_topk_tokens(next_token_probs, tokenizer, k=4, title=None, use_token_ids=False, file=None, save_html=True,
                     height=300, width=400, show=True):
    """One heatmap per batch item of the top-k tokens of each layer's distribution
    (``next_token_probs``: [vocab], [layers, vocab] or [batch, layers, vocab], e.g. from
    logit_lens). Returns the plotly Figure; writes ``file`` (.html, or an image) when given."""
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    probs = next_token_probs.detach().float().cpu()
    while probs.dim() < 3:
        probs = probs.unsqueeze(0)
    batch, layers = probs.shape[0], probs.shape[1]
    cols = min(3, batch)
    rows = math.ceil(batch / cols)
    fig = make_subplots(rows=rows, cols=cols)
    for b in range(batch):
        top = probs[b].topk(k, dim=-1)
        ids = top.indices.tolist()
        labels = [[str(i) if use_token_ids else "'" + tokenizer.convert_ids_to_tokens(i) + "'" for i in row] for row in ids]
        row, col = b // cols + 1, b % cols + 1
        fig.add_trace(
            go.Heatmap(z=top.values.tolist(), x=list(range(k)), y=list(range(layers)), text=labels,
                       customdata=ids, colorscale="RdBu_r", zmin=0, zmax=1,
                       hovertemplate="Layer: %{y}<br>ID: %{customdata}<br>Token: %{text}<br>Probability: %{z}<extra></extra>"),
            row=row, col=col)
        # Cell labels as annotations: Heatmap's texttemplate needs plotly >= 5.5 (Debian 12 has 5.4).
        for layer in range(layers):
            for j in range(k):
                fig.add_annotation(x=j, y=layer, text=labels[layer][j], showarrow=False, row=row, col=col,
                                   font={"size": 10})
    fig.update_xaxes(title_text="Tokens")
    fig.update_yaxes(title_text="Layers")
    fig.update_layout(title=title or f"Top {k} Tokens Heatmap", height=height * rows, width=width * cols)
    if file is not None:
        file = str(file)
        if not file.endswith(".html"):
            fig.write_image(file, scale=3)
        if save_html or file.endswith(".html"):
            fig.write_html(file if file.endswith(".html") else file.rsplit(".", 1)[0] + ".html")
    if show:
        fig.show()
    return fig


def prompts_to_df(prompts, tokenizer=None):
    """A pandas DataFrame with one column per prompt and rows prompt, <category>_string and (with a
    tokenizer) <category>_tokens, as the Python library lays it out."""
    import pandas as pd

    table = {}
    for i, p in enumerate(prompts):
        row = {"prompt": p.prompt}
        for category, strings in (p.target_strings or {}).items():
            row[f"{category}_string"] = strings
            if tokenizer is not None:
                row[f"{category}_tokens"] = tokenizer.convert_ids_to_tokens(p.target_tokens[category])
        table[i] = row
    return pd.DataFrame.from_dict(table)


__all__ = ["plot_topk_tokens", "prompts_to_df"]
