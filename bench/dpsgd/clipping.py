"""Per-row clipping on 2 CPU cores: our closed-form ghost clipping vs opacus and torch.func.

    PYTHONPATH=. python bench/dpsgd/clipping.py

One DP-SGD step's clipped gradient sum (no noise, no optimiser) for the flights-shaped net of
`run.py` (15 columns, 234 codes, 128 hidden units, a Poisson batch of ~2048 rows):
- `ghost (ours)`: `MadeNet.clipped_gradient_sum`, per-row norms in closed form, masks included;
- `torch.func vmap`: per-row gradients of the same masked net by `vmap(grad(...))`, then clip+sum;
- `opacus GradSampleModule`: the same layer shapes as an nn.Module (Embedding, Linear) without
  masks (opacus' samplers know no masks, so this is a cost comparison only), per-row gradients
  materialised by opacus' hooks, then clip+sum;
- `opacus ghost clipping`: `GradSampleModuleFastGradientClipping` on that module (two backward
  passes, no per-row gradients), where opacus supports its layers.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import torch
from opacus.grad_sample import GradSampleModule
from torch import nn
from torch.func import grad, vmap

from dbt_synth.mechanisms.dpsgd import MadeNet

CARDS = (12, 15, 14, 13, 14, 13, 14, 14, 12, 4, 54, 15, 14, 12, 10)
HIDDEN, BATCH, REPEATS = 128, 2048, 3


class _Plain(nn.Module):
    """MadeNet's layers as standard modules (no masks), for opacus."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(size, HIDDEN)
        self.out = nn.Linear(HIDDEN, size)
        self.direct = nn.Embedding(size, size)

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.embed(flat).sum(1))
        return self.out(hidden) + self.direct(flat).sum(1)


def _loss(logits: torch.Tensor, flat: torch.Tensor, spans, reduction="sum") -> torch.Tensor:
    parts = [torch.log_softmax(logits[:, a:b], 1) for a, b in spans]
    per_row = -torch.cat(parts, 1).gather(1, flat).sum(1)
    return per_row.sum() if reduction == "sum" else per_row


def _clip_sum(per_row: list[torch.Tensor], clip: float = 1.0) -> list[torch.Tensor]:
    n = per_row[0].shape[0]
    norms = torch.sqrt(sum(g.reshape(n, -1).square().sum(1) for g in per_row))
    scale = torch.clamp(clip / (norms + 1e-6), max=1.0)
    return [torch.einsum("n,n...->...", scale, g) for g in per_row]


def _timed(step) -> float:
    step()
    started = time.perf_counter()
    for _ in range(REPEATS):
        step()
    return (time.perf_counter() - started) / REPEATS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the mechanism: 1)")
    torch.set_num_threads(parser.parse_args().threads)
    generator = torch.Generator().manual_seed(0)
    net = MadeNet(CARDS, HIDDEN, generator)
    codes = torch.stack([torch.randint(0, c, (BATCH,), generator=generator) for c in CARDS], 1)
    flat = codes + net.offsets[:-1]
    size = int(net.offsets[-1])
    results = {"ghost (ours)": _timed(lambda: net.clipped_gradient_sum(codes, 1.0))}

    def row_loss(params, row):
        embed, hidden_bias, out, direct, out_bias = params
        hidden = hidden_bias + (embed * net.in_mask)[row].sum(0)
        logits = out_bias + torch.relu(hidden) @ (out * net.out_mask)
        logits = logits + (direct * net.direct_mask)[row].sum(0)
        return _loss(logits[None], row[None], net.spans)

    per_row_grad = vmap(grad(row_loss), in_dims=(None, 0))
    results["torch.func vmap"] = _timed(lambda: _clip_sum(per_row_grad(net.parameters(), flat)))

    plain = GradSampleModule(_Plain(size))

    def opacus_step():
        plain.zero_grad()
        _loss(plain(flat), flat, net.spans).backward()
        _clip_sum([p.grad_sample for p in plain.parameters()])

    results["opacus GradSampleModule"] = _timed(opacus_step)

    try:
        from opacus.grad_sample import GradSampleModuleFastGradientClipping

        ghost = GradSampleModuleFastGradientClipping(
            _Plain(size), max_grad_norm=1.0, use_ghost_clipping=True, loss_reduction="sum"
        )

        def opacus_ghost_step():
            ghost.zero_grad()
            per_row = _loss(ghost(flat), flat, net.spans, reduction="none")
            per_row.sum().backward(retain_graph=True)
            scale = ghost.get_clipping_coef()
            ghost.disable_hooks()
            (per_row * scale).sum().backward()
            ghost.enable_hooks()

        results["opacus ghost clipping"] = _timed(opacus_ghost_step)
    except Exception as error:  # report, do not hide, what opacus cannot do here
        print(f"opacus ghost clipping: not run ({type(error).__name__}: {error})")

    print(
        f"load average {os.getloadavg()}, threads: {torch.get_num_threads()}, "
        f"batch {BATCH}, {size} codes, hidden {HIDDEN}"
    )
    print("| per-row clipping | ms per step |")
    print("|---|---|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds * 1000:.0f} |")


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="Full backward hook")
    main()
