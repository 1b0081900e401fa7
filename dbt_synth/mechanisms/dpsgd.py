"""DP-SGD mechanism: an autoregressive network over the encoded columns, trained privately.

The generator is a MADE (Germain et al., 2015): one masked hidden layer plus masked direct
connections, so that column i's softmax head sees only the codes of columns before it, and a
row's likelihood is the product of its per-column conditionals. Sampling is column by column.

Training is DP-SGD (Abadi et al., 2016): Poisson-sampled batches (opacus' sampler), per-row
gradients clipped to L2 norm `clip`, Gaussian noise of `noise_multiplier · clip` on their sum,
and opacus' subsampled-Gaussian RDP accounting. The noise multiplier is calibrated so that the
whole run spends exactly what the accountant has left after the domains. The batch size, epochs
and clip are fixed settings and the sample rate is derived from the DP row count, so nothing about
the schedule depends on the private data. The rate is capped at 1/20: a small table gets many
small noisy steps rather than a few large ones (the accountant then allows a much lower noise
multiplier), and the net kept is a running average of the iterates (post-processing).

Per-row clipping is done without ever materialising per-row gradients ("ghost clipping"): for the
net's layers the squared norm of a row's gradient has a closed form in the row's activations and
output gradients — e.g. ‖δ aᵀ ∘ M‖² = Σₒ δₒ² (M a²)ₒ for a masked linear layer — and the clipped
sum is one weighted matmul per layer. `tests/test_dpsgd.py` checks both against per-row autograd.
This is several times faster on 2 CPU cores than opacus' GradSampleModule or `torch.func.vmap`
(see `bench/dpsgd/clipping.py`), and exact, where opacus' own ghost clipping ignores masks.

The noisy 1-way counts paid for while learning domains (`EncodedTable.priors`) initialise the
output biases, so training starts from the independent model that the domains already released.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from opacus.utils.uniform_sampler import UniformWithReplacementSampler

from dbt_synth.accounting import (
    PrivacyAccountant,
    epsilon_of_curve,
    gaussian_sigma,
    sgd_rdp_bound,
)
from dbt_synth.encoding import PriorCounts
from dbt_synth.mechanisms.base import EncodedTable, FitInputs, Mechanism
from dbt_synth.noise import NoiseSource

_SAMPLE_CHUNK = 100_000
# Rows sampled together inside a chunk: their activations (hidden units and direct logits) stay
# within the CPU's cache, which made sampling several times faster than whole 100k-row chunks.
_SAMPLE_BLOCK = 2048


@dataclass(frozen=True)
class TrainingPlan:
    """The public DP-SGD schedule and the noise calibrated to it."""

    sample_rate: float
    steps: int
    noise_multiplier: float
    clip: float
    expected_batch: float


@dataclass(eq=False)
class DPSGDMechanism(Mechanism):
    """A masked autoregressive MLP over the codes, trained with DP-SGD."""

    name = "dpsgd"

    hidden: int = 128
    epochs: float = 10.0
    batch_size: int = 2048
    # At least 20 steps an epoch, so a small table still gets 200 (issue 15, bench/RESULTS.md).
    max_sample_rate: float = 0.05
    clip: float = 1.0
    learning_rate: float = 0.03
    anchor_share: float = 0.1
    # The net kept is an exponential moving average of the iterates (post-processing).
    ema: float = 0.95
    plan: TrainingPlan | None = field(default=None, init=False)
    # Realised Poisson batch sizes, for tests and reports.
    batch_sizes: list[int] = field(default_factory=list, init=False, repr=False)
    _net: MadeNet | None = field(default=None, init=False, repr=False)

    def _fit(self, fit: FitInputs) -> None:
        data, accountant, noise = fit.data, fit.accountant, fit.noise
        # Schedule from public settings and the DP row count only.
        rows = max(fit.rows_estimate, 1.0)
        sample_rate = min(self.batch_size / rows, self.max_sample_rate)
        steps = max(math.ceil(self.epochs / sample_rate), 1)
        anchors = self._measure_anchors(data, accountant, noise)
        multiplier = accountant.calibrate_sgd_noise(sample_rate, steps)
        before = accountant.rdp()
        accountant.spend_sgd(
            "training",
            multiplier,
            sample_rate,
            steps,
            detail=f"MADE {len(data.cardinalities)} columns, hidden {self.hidden}, "
            f"clip {self.clip}",
        )
        plan = TrainingPlan(sample_rate, steps, multiplier, self.clip, sample_rate * rows)
        self.plan = plan

        generator = noise.torch_generator()
        self.batch_sizes = []
        net = MadeNet(data.cardinalities, self.hidden, generator)
        net.initialise_biases(data.priors)
        self._net = net
        codes = torch.from_numpy(data.codes.astype(np.int64))
        sampler = UniformWithReplacementSampler(
            num_samples=data.rows, sample_rate=sample_rate, generator=generator, steps=steps
        )
        optimiser = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        average = [p.clone() for p in net.parameters()] if self.ema else None
        steps_per_epoch = max(round(1 / sample_rate), 1)
        loss_sum, rows_seen = 0.0, 0
        for step, batch in enumerate(sampler, start=1):
            clipped, loss = net.clipped_gradient_sum(codes[batch], plan.clip)
            for parameter, gradient, mask in zip(
                net.parameters(), clipped, net.masks(), strict=True
            ):
                noisy = gradient + torch.normal(
                    0.0, multiplier * plan.clip, gradient.shape, generator=generator
                )
                # Noise on a masked weight would be discarded anyway: drop it before Adam.
                parameter.grad = noisy * mask / plan.expected_batch
            optimiser.step()
            if average is not None:
                for mean, parameter in zip(average, net.parameters(), strict=True):
                    mean.lerp_(parameter, 1.0 - self.ema)
            loss_sum += loss
            rows_seen += len(batch)
            self.batch_sizes.append(len(batch))
            if step % steps_per_epoch == 0 or step == steps:
                curve = before + sgd_rdp_bound(multiplier, sample_rate, step)
                spent = epsilon_of_curve(curve, accountant.conversion_delta)
                fit.progress(
                    f"epoch {step / steps_per_epoch:.0f}/{self.epochs:g}: "
                    f"step {step}/{steps}, mean loss {loss_sum / max(rows_seen, 1):.3f} nats/row, "
                    f"ε so far {spent:.3f}"
                )
                loss_sum, rows_seen = 0.0, 0
        if average is not None:
            for parameter, mean in zip(net.parameters(), average, strict=True):
                parameter.copy_(mean)
        with torch.no_grad():
            net.calibrate_to_priors(anchors, noise.generator)

    def _measure_anchors(
        self, data: EncodedTable, accountant: PrivacyAccountant, noise: NoiseSource
    ) -> tuple[PriorCounts | None, ...]:
        """Noisy 1-way counts that the trained net's marginals are calibrated to.

        With `anchor_share` 0 these are the domains' priors (free). Numeric priors are sums of
        many noisy tree leaves and can be far off, so by default a share of the budget measures
        every column's 1-way counts afresh (one Gaussian count per code, sensitivity 1).
        """
        if self.anchor_share <= 0:
            return data.priors
        rho = self.anchor_share * accountant.remaining_rho() / len(data.cardinalities)
        sigma = gaussian_sigma(rho)
        anchors = []
        for j, name in enumerate(data.names):
            counts = np.bincount(data.codes[:, j], minlength=data.cardinalities[j]).astype(float)
            accountant.spend_gaussian("measurement", sigma, column=name, detail=f"1-way {name}")
            anchors.append(PriorCounts(noise.counts(counts, sigma), sigma))
        return tuple(anchors)

    def _sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._net is None:
            raise RuntimeError("sample() before fit()")
        # In chunks: sampling holds an (n, codes) float tensor, too much for a 10M-row twin.
        chunks = [min(_SAMPLE_CHUNK, n - start) for start in range(0, n, _SAMPLE_CHUNK)]
        with torch.no_grad():
            parts = [self._net.sample(size, rng) for size in chunks]
        width = len(self._net.cardinalities)
        return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int32)


class MadeNet:
    """One-hidden-layer MADE over concatenated one-hot codes, with hand-written gradients.

    Parameters: `embed` (K, H) input-to-hidden rows, `hidden_bias` (H,), `out` (H, K),
    `direct` (K, K) input-to-output, `out_bias` (K,), K = Σ cardinalities. Hidden unit h has
    degree m_h ∈ 1..d-1 and sees input columns j < m_h; output column i sees hidden units with
    m_h ≤ i and input columns j < i.
    """

    def __init__(
        self, cardinalities: tuple[int, ...], hidden: int, generator: torch.Generator
    ) -> None:
        cards = torch.tensor(cardinalities)
        d = len(cardinalities)
        self.cardinalities = cardinalities
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(cards, 0)])
        size = int(self.offsets[-1])
        column_of = torch.repeat_interleave(torch.arange(d), cards)  # (K,)
        self.column_of = column_of
        hidden = hidden if d > 1 else 0
        degree = 1 + torch.arange(hidden) % max(d - 1, 1)  # (H,)
        self.degree = degree.float()
        self.in_mask = (column_of[:, None] < degree[None, :]).float()  # (K, H)
        self.out_mask = (degree[:, None] <= column_of[None, :]).float()  # (H, K)
        self.direct_mask = (column_of[:, None] < column_of[None, :]).float()  # (K, K)
        # How many input columns feed each output column: a direct row's squared input norm.
        self.direct_inputs = column_of.float()  # (K,)
        self.spans = [(int(self.offsets[j]), int(self.offsets[j + 1])) for j in range(d)]
        scale_in = 1.0 / math.sqrt(max(d - 1, 1))
        scale_out = 1.0 / math.sqrt(max(hidden, 1))
        self.embed = torch.randn(size, hidden, generator=generator) * scale_in
        self.hidden_bias = torch.zeros(hidden)
        self.out = torch.randn(hidden, size, generator=generator) * scale_out * 0.1
        self.direct = torch.zeros(size, size)
        self.out_bias = torch.zeros(size)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.apply_masks()

    def parameters(self) -> list[torch.Tensor]:
        return [self.embed, self.hidden_bias, self.out, self.direct, self.out_bias]

    def masks(self) -> list[torch.Tensor | float]:
        """Multipliers that zero the gradient of masked weights, aligned with `parameters`."""
        return [self.in_mask, 1.0, self.out_mask, self.direct_mask, 1.0]

    def apply_masks(self) -> None:
        """Keep masked weights at zero (noise and Adam's moments would otherwise move them)."""
        self.embed.mul_(self.in_mask)
        self.out.mul_(self.out_mask)
        self.direct.mul_(self.direct_mask)

    def initialise_biases(self, priors) -> None:
        """Output biases at the log of the noisy 1-way frequencies already released (free)."""
        for j, prior in enumerate(priors):
            if prior is None:
                continue
            counts = np.nan_to_num(np.asarray(prior.counts, dtype=float), nan=0.0)
            counts = np.clip(counts, 0.0, None) + max(prior.sigma, 1.0)
            probs = counts / counts.sum()
            start, stop = int(self.offsets[j]), int(self.offsets[j + 1])
            self.out_bias[start:stop] = torch.from_numpy(np.log(probs)).float()

    def calibrate_to_priors(
        self, priors, rng: np.random.Generator, rounds: int = 3, rows: int = 10_000
    ) -> None:
        """Shift output biases until the sampled 1-way frequencies match the noisy priors.

        DP-SGD's noise makes the net drift from 1-way frequencies that were measured far more
        precisely during domain discovery; re-using those measurements is post-processing. A code
        whose count was not measured (NaN) keeps the model's own share of its column.
        """
        for _ in range(rounds):
            _, marginals = self.sample(rows, rng, with_marginals=True)
            for j, prior in enumerate(priors):
                if prior is None:
                    continue
                counts = np.asarray(prior.counts, dtype=float)
                model = marginals[j]
                measured = ~np.isnan(counts)
                target = model.copy()
                clipped = np.clip(counts[measured], 0.0, None)
                if clipped.sum() <= 0:
                    continue
                target[measured] = clipped / clipped.sum() * model[measured].sum()
                shift = np.log((target + 1e-4) / (model + 1e-4))
                start = int(self.offsets[j])
                self.out_bias[start : start + len(counts)] += torch.from_numpy(shift).float()

    # --- forward -------------------------------------------------------------------------------
    # A row's one-hot input has one 1 per column: input layers are sums of looked-up rows.
    def _hidden(self, flat: torch.Tensor) -> torch.Tensor:
        return self.hidden_bias + F.embedding_bag(flat, self.embed, mode="sum")

    def _logits(self, flat: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        direct = F.embedding_bag(flat, self.direct, mode="sum")
        return torch.addmm(self.out_bias + direct, torch.relu(hidden), self.out)

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-column log-softmax, (n, K)."""
        return torch.cat([torch.log_softmax(logits[:, a:b], 1) for a, b in self.spans], 1)

    def log_likelihood(self, codes: torch.Tensor) -> torch.Tensor:
        """Per-row log-likelihood (n,) in nats; the training loss is its negative."""
        flat = codes + self.offsets[:-1]
        log_probs = self._log_probs(self._logits(flat, self._hidden(flat)))
        return log_probs.gather(1, flat).sum(1)

    # --- per-row clipped gradient ------------------------------------------------------------
    def per_row_gradient_norms(self, codes: torch.Tensor) -> torch.Tensor:
        """L2 norm of each row's loss gradient over all parameters (for tests and clipping)."""
        return self._backward(codes)[0]

    def clipped_gradient_sum(
        self, codes: torch.Tensor, clip: float
    ) -> tuple[list[torch.Tensor], float]:
        """Σ over rows of each row's gradient scaled to norm ≤ `clip`, and the summed loss."""
        norms, flat, hidden, delta_out, delta_hidden, loss = self._backward(codes)
        scale = torch.clamp(clip / (norms + 1e-6), max=1.0)[:, None]
        weighted_out = delta_out * scale
        weighted_hidden = delta_hidden * scale
        grad_embed = torch.zeros_like(self.embed)
        grad_direct = torch.zeros_like(self.direct)
        for j in range(flat.shape[1]):
            grad_embed.index_add_(0, flat[:, j], weighted_hidden)
            grad_direct.index_add_(0, flat[:, j], weighted_out)
        grads = [
            grad_embed * self.in_mask,
            weighted_hidden.sum(0),
            (torch.relu(hidden).T @ weighted_out) * self.out_mask,
            grad_direct * self.direct_mask,
            weighted_out.sum(0),
        ]
        return grads, loss

    def _backward(self, codes: torch.Tensor):
        flat = codes + self.offsets[:-1]
        hidden = self._hidden(flat)
        log_probs = self._log_probs(self._logits(flat, hidden))
        loss = -float(log_probs.gather(1, flat).sum())
        # d(−log p)/d logits = softmax − one-hot, per column.
        delta_out = log_probs.exp()
        delta_out.scatter_add_(1, flat, torch.full(flat.shape, -1.0))
        active = torch.relu(hidden)
        delta_hidden = (delta_out @ self.out.T) * (hidden > 0)
        squared = delta_out.square()
        norm2 = (
            squared.sum(1)  # out_bias
            + (squared * (active.square() @ self.out_mask)).sum(1)  # out (masked)
            + squared @ self.direct_inputs  # direct: one-hot inputs, j < i of them
            + delta_hidden.square().sum(1)  # hidden_bias
            + delta_hidden.square() @ self.degree  # embed: m_h one-hot inputs per unit
        )
        return norm2.sqrt(), flat, hidden, delta_out, delta_hidden, loss

    # --- sampling ------------------------------------------------------------------------------
    def sample(
        self, n: int, rng: np.random.Generator, *, with_marginals: bool = False
    ) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        """Column by column: each head conditioned on the codes already drawn.

        `with_marginals` also returns each column's mean conditional probabilities over the
        drawn prefixes: its 1-way marginal with far less variance than counting the draws.

        The uniforms are drawn first, column by column ((d, n) in C order: the stream of `d`
        calls of `rng.random(n)`), and rows are then sampled in blocks of `_SAMPLE_BLOCK`, whose
        activations stay in the CPU cache; a row's codes depend on its own uniforms only, so the
        block size changes no output.
        """
        d = len(self.cardinalities)
        uniforms = rng.random((d, n))
        codes = np.zeros((n, d), dtype=np.int32)
        block = n if with_marginals else _SAMPLE_BLOCK
        sums = [np.zeros(c) for c in self.cardinalities] if with_marginals else None
        # Each column's output weights, and the direct weights from the columns before it, as
        # contiguous matrices: a head's logits read only its own.
        heads = [
            (self.out[:, a:b].contiguous(), self.direct[:a, a:b].contiguous())
            for a, b in self.spans
        ]
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            codes[rows] = self._sample_block(uniforms[:, rows], heads, sums)
        marginals = [total / max(n, 1) for total in sums or []]
        return (codes, marginals) if with_marginals else codes

    def _sample_block(
        self,
        uniforms: np.ndarray,
        heads: list[tuple[torch.Tensor, torch.Tensor]],
        sums: list[np.ndarray] | None,
    ) -> np.ndarray:
        """Codes of `uniforms.shape[1]` rows, one column of `uniforms` per row; `sums` (when
        given) gains each column's conditional probabilities summed over the rows.

        A code is drawn by inverting the cumulative of exp(logit − row max) (in float64) at
        uniform × its total: the softmax without its division.
        """
        d, n = uniforms.shape
        flat = torch.zeros((n, d), dtype=torch.long)
        hidden = self.hidden_bias.expand(n, -1).clone()
        for j, (out, direct) in enumerate(heads):
            start, stop = self.spans[j]
            logits = self.out_bias[start:stop] + torch.relu(hidden) @ out
            # Direct connections, summed in column order from the codes already drawn.
            logits += F.embedding_bag(flat[:, :j], direct, mode="sum") if j else 0.0
            weights = logits.double()
            weights = (weights - weights.amax(1, keepdim=True)).exp_()
            if sums is not None:
                sums[j] += (weights / weights.sum(1, keepdim=True)).sum(0).numpy()
            cumulative = weights.cumsum_(1).numpy()
            total = cumulative[:, -1]
            chosen = (cumulative < (uniforms[j] * total)[:, None]).sum(1)
            flat[:, j] = torch.from_numpy(np.minimum(chosen, stop - start - 1) + start)
            if j + 1 < d:
                hidden += self.embed[flat[:, j]]
        return (flat - self.offsets[:-1]).numpy().astype(np.int32)
