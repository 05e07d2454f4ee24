"""Training with surrogate gradients, in a few lines: teach 10 LIF neurons target spike counts.

Twenty Poisson input channels (fixed seed) drive 10 LIF neurons with exponential
synapses through a learnable weight matrix W. The loss is the squared difference
between each neuron's spike count and its target (2, 4, ..., 20 spikes in 200 ms).
The forward pass is the ordinary simulator (neurosim.simulate: exact propagator, spikes
on the grid, Heaviside spike), the backward pass uses the SuperSpike surrogate
derivative, and Adam updates W. No separate training code path: the same step function
simulates and trains.

For a full network trained on a data set see examples/train_digits.py and the neurosim.nn
modules (docs: "Training").

    python examples/train_tiny.py [--out train_tiny.png] [--smoke]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import neurosim  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="train_tiny.png", help="output PNG")
    parser.add_argument("--smoke", action="store_true", help="a few steps, for tests")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    n_in, n_out, dt, T = 20, 10, 1e-3, 200
    steps = args.steps or (4 if args.smoke else 60)
    g = torch.Generator().manual_seed(args.seed)
    inputs = (torch.rand(T, n_in, generator=g) < 30.0 * dt).float()  # 30 Hz Poisson
    target = torch.arange(1, n_out + 1, dtype=torch.float32) * 2.0
    W = torch.nn.Parameter(2.0 * torch.randn(n_in, n_out, generator=g))
    model = neurosim.LIF(tau_mem=20e-3, tau_syn=5e-3)  # input jumps into the synaptic current
    opt = torch.optim.Adam([W], lr=0.05)

    def counts() -> torch.Tensor:
        res = neurosim.simulate(model, inputs @ W, dt, method="exact", precise=False,
                                record=None, surrogate="superspike")
        return res.spikes.sum(0)

    with torch.no_grad():
        before = counts()
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = ((counts() - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            print(f"step {step:3d}: loss {loss.item():.3f}")
    with torch.no_grad():
        after = counts()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    ax1.plot(np.arange(1, steps + 1), losses, marker="o", ms=3)
    ax1.set_xlabel("optimiser step")
    ax1.set_ylabel("loss (spikes²)")
    ax1.set_yscale("log")
    ax1.set_title("mean squared spike-count error")
    idx = np.arange(n_out)
    ax2.bar(idx - 0.2, before.numpy(), width=0.4, label="before", color="0.7")
    ax2.bar(idx + 0.2, after.numpy(), width=0.4, label="after", color="C0")
    ax2.plot(idx, target.numpy(), "k_", ms=14, mew=2, label="target")
    ax2.set_xlabel("output neuron")
    ax2.set_ylabel(f"spikes in {T * dt * 1e3:g} ms")
    ax2.set_xticks(idx)
    ax2.legend(loc="upper left", fontsize="small")
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
