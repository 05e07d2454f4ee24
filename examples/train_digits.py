"""Train a spiking network on scikit-learn's 8x8 digits (bundled, no download).

64 inputs (latency- or rate-coded pixel intensities) -> 128 LIF neurons -> 10
leaky-integrator (LI) readouts; the class is the readout with the largest membrane
maximum over the presentation (max-membrane cross-entropy), trained by BPTT with
surrogate gradients through neurosim's exact-exponential step.

    python examples/train_digits.py                 # ~97 % test accuracy, seconds on 2 cores
    python examples/train_digits.py --train-tau     # also learns per-neuron time constants
    python examples/train_digits.py --encoding rate
    python examples/train_digits.py --smoke         # a few seconds, for CI
    python examples/train_digits.py --out digits.png   # also plot the loss and a readout trace
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from neurosim.nn import LIFLayer, LILayer, accuracy, max_membrane, max_membrane_cross_entropy


def encode(images: torch.Tensor, steps: int, encoding: str,
           generator: torch.Generator) -> torch.Tensor:
    """Pixel intensities in [0, 1], ``[n, 64]`` -> input spikes ``[steps, n, 64]``.

    ``latency``: each non-zero pixel spikes once, brighter pixels earlier
    (intensity 1 at the first step, intensity -> 0 at the last).
    ``rate``: a Bernoulli spike per step with probability equal to the intensity.
    """
    n, d = images.shape
    if encoding == "latency":
        when = torch.round((1.0 - images) * (steps - 1)).long()
        out = torch.zeros(steps, n, d)
        out.scatter_(0, when.unsqueeze(0), (images > 0).float().unsqueeze(0))
        return out
    return (torch.rand(steps, n, d, generator=generator) < images).float()


class SpikingClassifier(torch.nn.Module):
    """Linear -> LIF (hidden) -> Linear -> LI (readout)."""

    def __init__(self, hidden: int, dt: float, learn: tuple[str, ...]) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(64, hidden)
        # spikes jump into the synaptic current (i += w·s), which drives the membrane
        self.lif = LIFLayer(hidden, tau_mem=20e-3, tau_syn=10e-3, input_mode="jump",
                            reset="subtract", dt=dt, surrogate="atan", learn=learn)
        self.fc2 = torch.nn.Linear(hidden, 10)
        self.readout = LILayer(10, tau_mem=20e-3, tau_syn=10e-3, input_mode="jump", dt=dt,
                               learn=learn)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [T, B, 64]`` -> (readout membrane ``[T, B, 10]``, hidden spikes ``[T, B, H]``)."""
        z, _ = self.lif(self.fc1(x) * 4.0)
        v, _ = self.readout(self.fc2(z) * 4.0)
        return v, z


def tau_summary(model: SpikingClassifier) -> dict[str, np.ndarray]:
    """Time constants in ms of both layers (per neuron where learned)."""
    out = {}
    for name, layer in (("hidden", model.lif), ("readout", model.readout)):
        for tau in ("tau_mem", "tau_syn"):
            value = torch.as_tensor(getattr(layer, tau)).detach().cpu().numpy() * 1e3
            out[f"{name}.{tau}"] = np.atleast_1d(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoding", choices=("latency", "rate"), default="latency")
    parser.add_argument("--steps", type=int, default=20, help="time steps per image")
    parser.add_argument("--dt", type=float, default=1e-3, help="time step (s)")
    parser.add_argument("--hidden", type=int, default=128, help="LIF neurons")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--train-tau", action="store_true",
                        help="also learn per-neuron membrane and synaptic time constants")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run, for CI")
    parser.add_argument("--out", default=None,
                        help="write a PNG of the training loss and the readout membranes "
                             "for one test image")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=0.2,
                                           random_state=args.seed, stratify=digits.target)
    if args.smoke:
        idx_train, idx_test = idx_train[:128], idx_test[:64]
        args.epochs, args.hidden = 1, 32
    x_train, y_train = images[idx_train], labels[idx_train]
    x_test, y_test = images[idx_test], labels[idx_test]

    learn = ("tau_mem", "tau_syn") if args.train_tau else ()
    model = SpikingClassifier(args.hidden, args.dt, learn)
    before = tau_summary(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)

    def evaluate(x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            v, _ = model(encode(x, args.steps, args.encoding, gen))
        return accuracy(max_membrane(v), y)

    print(f"digits: {len(idx_train)} train / {len(idx_test)} test images, "
          f"{args.encoding} coding, T = {args.steps} steps of {args.dt * 1e3:g} ms, "
          f"{args.hidden} LIF neurons{', learning time constants' if learn else ''}")
    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="training", unit="epoch")
    history = []
    for _ in bar:
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        total, rate = 0.0, 0.0
        for k in range(0, len(order), args.batch):
            batch = order[k:k + args.batch]
            v, z = model(encode(x_train[batch], args.steps, args.encoding, gen))
            loss = max_membrane_cross_entropy(v, y_train[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            rate += z.detach().mean().item() * len(batch)
        sched.step()
        history.append(total / len(order))
        bar.set_postfix(loss=f"{total / len(order):.3f}",
                        rate=f"{rate / len(order) / args.dt:.0f} Hz")
    train_acc = evaluate(x_train, y_train)
    test_acc = evaluate(x_test, y_test)
    elapsed = time.perf_counter() - start
    print(f"train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} "
          f"({len(idx_test)} held-out images), {elapsed:.1f} s")
    if learn:
        after = tau_summary(model)
        print("time constants (ms): before -> after (mean, min-max over neurons)")
        for key, old in before.items():
            new = after[key]
            print(f"  {key:18s} {old.mean():6.2f} -> {new.mean():6.2f} "
                  f"[{new.min():6.2f}, {new.max():6.2f}]  "
                  f"mean |change| {np.abs(new - old).mean():.3f}")
    if args.out:
        plot_training(model, history, x_test[:1], int(y_test[0]), args, gen)
        print(f"wrote {args.out}")


def plot_training(model: SpikingClassifier, history: list[float], image: torch.Tensor,
                  label: int, args: argparse.Namespace, gen: torch.Generator) -> None:
    """Loss per epoch, and the 10 readout membranes for one held-out image."""
    import matplotlib.pyplot as plt

    with torch.no_grad():
        v, _ = model(encode(image, args.steps, args.encoding, gen))
    t_ms = (np.arange(v.shape[0]) + 1) * args.dt * 1e3
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    ax1.plot(np.arange(1, len(history) + 1), history, "o-")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss (max-membrane cross-entropy)")
    ax1.set_title("training")
    for k in range(10):
        ax2.plot(t_ms, v[:, 0, k].numpy(), lw=2.5 if k == label else 1.0,
                 color="C3" if k == label else "0.6", label=f"digit {k}" if k == label else None)
    ax2.set_xlabel("time (ms)")
    ax2.set_ylabel("readout membrane v (dimensionless)")
    ax2.set_title(f"LI readouts for a held-out '{label}'")
    ax2.legend(loc="upper left")
    fig.savefig(args.out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
