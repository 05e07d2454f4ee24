"""The Naud et al. (2008) firing-pattern gallery of the AdEx model.

All eight presets (tonic, adapting, initial burst, regular bursting, delayed
accelerating, delayed regular bursting, transient, irregular) are simulated in ONE
call: the presets become one model with tensor parameters, each neuron driven by
its own step current. The adaptive integrator locates every spike inside the step
(spike times are exact to ~1e-7 s); the traces are recorded on the dt grid and the
spikes drawn at their located times.

    python examples/adex_firing_patterns.py [--out adex_firing_patterns.png] [--smoke]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import neurosim  # noqa: E402
from neurosim.models import NAUD_PRESETS  # noqa: E402
from neurosim.plot import plot_membrane  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="adex_firing_patterns.png", help="output PNG")
    parser.add_argument("--smoke", action="store_true", help="short run (50 ms), for tests")
    parser.add_argument("--duration", type=float, default=0.4, help="simulated time (s)")
    parser.add_argument("--dt", type=float, default=5e-4, help="recording grid (s)")
    parser.add_argument("--dpi", type=int, default=72, help="figure resolution")
    args = parser.parse_args(argv)

    duration = 0.05 if args.smoke else args.duration
    names = tuple(NAUD_PRESETS)
    model = neurosim.AdEx.presets(names)
    steps = round(duration / args.dt)
    onset = round(0.02 / args.dt)  # 20 ms at rest, then the step current
    current = torch.tensor([neurosim.AdEx.preset_current(n) for n in names],
                           dtype=torch.float64)
    drive = torch.zeros(steps, len(names), dtype=torch.float64)
    drive[onset:] = current
    res = neurosim.simulate(model, drive, args.dt, method="adaptive", rtol=1e-6, atol=1e-6,
                            record="all", progress=not args.smoke)

    fig, axes = plt.subplots(4, 2, figsize=(9, 7.5), sharex=True, layout="constrained")
    for k, (ax, name) in enumerate(zip(axes.T.ravel(), names, strict=True)):
        # plot_membrane draws each spike up to the cut-off v_peak at its precise time
        plot_membrane(res, neurons=[k], ax=ax, color="k", show_threshold=False)
        for line in ax.lines:
            line.set_linewidth(0.8)
        ax.set_title(f"{name.replace('_', ' ')}  (I = {current[k]:.0f} pA)", fontsize=9)
        ax.set_ylim(-80, 10)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("time (ms)" if ax in axes[-1] else "", fontsize=8)
        ax.set_ylabel("v (mV)" if ax in axes[:, 0] else "", fontsize=8)
    fig.suptitle("AdEx firing patterns (Naud et al. 2008)", fontsize=10)
    fig.savefig(args.out, dpi=args.dpi)
    print(f"wrote {args.out}: {int(res.spike_count().sum())} spikes in {duration} s")


if __name__ == "__main__":
    main()
