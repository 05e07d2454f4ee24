"""One LIF neuron, three integrators, side by side.

The same model (tau_mem = 20 ms, constant drive 1.5, t_ref = 2 ms) simulated with
exact exponential integration, forward Euler and the adaptive Dormand-Prince
integrator at a coarse dt = 1 ms. Exact and adaptive locate each spike inside the
step (the closed-form first spike is at 20 ms · ln 3 = 21.97225 ms); Euler puts it on
the grid and drifts.

    python examples/lif_integrators.py [--out lif_integrators.png] [--smoke]
"""

from __future__ import annotations

import argparse
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import neurosim  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lif_integrators.png", help="output PNG")
    parser.add_argument("--smoke", action="store_true", help="short run, for tests")
    parser.add_argument("--dt", type=float, default=1e-3, help="time step (s)")
    args = parser.parse_args()

    duration = 0.05 if args.smoke else 0.2
    model = neurosim.LIF(tau_mem=20e-3, t_ref=2e-3)
    drive = torch.full((int(round(duration / args.dt)), 1), 1.5, dtype=torch.float64)
    exact_first = 20e-3 * math.log(3.0)

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True, layout="constrained")
    for ax, method in zip(axes, ("exact", "euler", "adaptive"), strict=True):
        res = neurosim.simulate(model, drive, args.dt, method=method)
        res.plot(ax=ax, label=method)
        first = res.spike_times[0][0]
        ax.set_title(f"{method}: first spike {first * 1e3:.5f} ms\n"
                     f"(error {abs(first - exact_first) * 1e3:.2e} ms)")
        print(f"{method:>8}: first spike at {first * 1e3:.6f} ms, "
              f"error {abs(first - exact_first) * 1e3:.2e} ms")
    fig.suptitle(f"LIF neuron, dt = {args.dt * 1e3:g} ms, closed-form first spike "
                 f"{exact_first * 1e3:.5f} ms")
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
