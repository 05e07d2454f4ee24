"""f-I curves: firing rate against constant input, from one batched simulation each.

Left: a LIF neuron (tau_mem = 20 ms, t_ref = 2 ms) integrated exactly, against the
closed form f = 1 / (t_ref + tau ln(rI / (rI - v_th))) at dt = 0.5 ms, and with forward Euler at a
coarse dt = 1 ms, whose rates are quantised and biased. Right: the same LIF for three
membrane time constants (a tensor parameter: one simulation for the whole family), and
the adaptive-threshold ALIF, whose steady-state rate (after a 0.5 s transient) is lower.

    python examples/fi_curve.py [--out fi_curve.png] [--smoke]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import neurosim  # noqa: E402
from neurosim.plot import fi_curve, plot_fi_curve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="fi_curve.png", help="output PNG")
    parser.add_argument("--smoke", action="store_true", help="short run, for tests")
    args = parser.parse_args()

    duration = 0.06 if args.smoke else 1.0
    dt = 5e-4  # exact integration with precise spike times is exact at any dt
    currents = np.linspace(0.0, 4.0, 9 if args.smoke else 41)
    tau, t_ref = 20e-3, 2e-3
    lif = neurosim.LIF(tau_mem=tau, t_ref=t_ref)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    fine = np.linspace(1.0 + 1e-6, 4.0, 400)
    closed = 1.0 / (t_ref + tau * np.log(fine / (fine - 1.0)))
    ax1.plot(np.r_[0.0, 1.0, fine], np.r_[0.0, 0.0, closed], color="k", lw=3, alpha=0.3,
             label="closed form")
    I, f_exact = fi_curve(lif, currents, duration, dt=dt, method="exact")
    plot_fi_curve(I, f_exact, ax=ax1, label=f"exact, dt = {dt * 1e3:g} ms", model=lif)
    _, f_euler = fi_curve(lif, currents, duration, dt=1e-3, method="euler")
    plot_fi_curve(I, f_euler, ax=ax1, label="Euler, dt = 1 ms", marker="s", ls="--")
    ax1.set_title(f"LIF, tau_mem = {tau * 1e3:g} ms, t_ref = {t_ref * 1e3:g} ms")
    ref = 1.0 / (t_ref + tau * np.log(currents[currents > 1] / (currents[currents > 1] - 1)))
    print(f"exact: max |f - closed form| = {np.max(np.abs(f_exact[currents > 1] - ref)):.2e} Hz;"
          f" Euler at dt = 1 ms: {np.max(np.abs(f_euler[currents > 1] - ref)):.2f} Hz")

    taus = torch.tensor([10e-3, 20e-3, 40e-3], dtype=torch.float64)
    _, f_taus = fi_curve(neurosim.LIF(tau_mem=taus, t_ref=t_ref), currents, duration, dt)
    for j, t in enumerate(taus.tolist()):
        plot_fi_curve(I, f_taus[:, j], ax=ax2, label=f"LIF, tau_mem = {t * 1e3:g} ms", model=lif)
    transient = 0.5 * duration
    alif = neurosim.ALIF(tau_mem=tau, t_ref=t_ref, tau_adapt=100e-3, beta_adapt=0.5)
    _, f_alif = fi_curve(alif, currents, duration, dt, transient=transient)
    plot_fi_curve(I, f_alif, ax=ax2, label=f"ALIF, tau_mem = {tau * 1e3:g} ms, after "
                  f"{transient:g} s", color="k", marker="^")
    ax2.set_title("a family of f-I curves, one simulation each")
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
