"""Phase planes of two-variable models: nullclines, threshold, flow and a trajectory.

Left: LIF with an exponential synaptic current in current mode, (v, i) plane: the
synaptic current relaxes to the input (i-nullcline i = I), the membrane chases
v_leak + r i (v-nullcline), and the trajectory resets to v_reset at each threshold
crossing. Right: ALIF, (v, b) plane: each spike raises the adaptation variable b, the
threshold v_th + beta b moves right, and the trajectory settles into adapted firing.
Bottom: the biophysical two-variable models, Izhikevich RS in the (v, u) plane (the
parabolic v-nullcline and the linear u-nullcline) and AdEx "adapting" (Naud et al.
2008) in the (v, w) plane (the exponential v-nullcline), each resetting at v_peak.

The nullclines come from model.derivatives on a grid, so plot_phase_plane works for
any model with two state variables (Izhikevich, AdEx, ...) the same way.

    python examples/phase_plane.py [--out phase_plane.png] [--smoke]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import neurosim  # noqa: E402
from neurosim.plot import plot_phase_plane  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="phase_plane.png", help="output PNG")
    parser.add_argument("--smoke", action="store_true", help="short run, for tests")
    args = parser.parse_args()

    duration = 0.06 if args.smoke else 0.2
    dt = 1e-4
    steps = int(round(duration / dt))
    fig, ((ax1, ax2), (ax3, ax4)) = plt.subplots(2, 2, figsize=(11, 9.2),
                                                 layout="constrained")

    lif = neurosim.LIF(tau_mem=10e-3, tau_syn=5e-3, input_mode="current", t_ref=2e-3)
    drive = 2.0
    res = neurosim.simulate(lif, torch.full((steps, 1), drive, dtype=torch.float64), dt,
                            record="all")
    plot_phase_plane(lif, "v", "i", x_range=(-0.2, 1.2), y_range=(-0.2, 2.4), input=drive,
                     trajectory=res, ax=ax1)
    ax1.set_title(f"LIF with synapse (v, i), input {drive:g}: {res.spike_time.size} spikes")

    alif = neurosim.ALIF(tau_mem=20e-3, tau_adapt=100e-3, beta_adapt=0.3, t_ref=2e-3)
    drive = 3.0
    res = neurosim.simulate(alif, torch.full((steps * 2, 1), drive, dtype=torch.float64), dt,
                            record="all")
    b_max = float(res.b.max())
    plot_phase_plane(alif, "v", "b", x_range=(-0.2, 3.2), y_range=(-0.2, b_max + 0.5),
                     input=drive, trajectory=res, ax=ax2)
    ax2.set_title(f"ALIF (v, b), input {drive:g}: {res.spike_time.size} spikes")
    ax1.legend(loc="lower right", fontsize="small", framealpha=0.9)
    ax2.legend(loc="center right", fontsize="small", framealpha=0.9)

    izh = neurosim.Izhikevich.preset("RS")
    drive = 10.0  # mV/ms
    res = neurosim.simulate(izh, torch.full((steps * 2, 1), drive, dtype=torch.float64), dt,
                            method="adaptive", record="all")
    plot_phase_plane(izh, "v", "u", x_range=(-80.0, 35.0), y_range=(-20.0, 15.0),
                     input=drive, trajectory=res, ax=ax3)
    ax3.set_title(f"Izhikevich RS (v, u), input {drive:g} mV/ms: {res.spike_time.size} spikes")

    adex = neurosim.AdEx.preset("adapting")
    drive = neurosim.AdEx.preset_current("adapting")  # pA
    res = neurosim.simulate(adex, torch.full((steps * 2, 1), drive, dtype=torch.float64), dt,
                            method="adaptive", record="all")
    plot_phase_plane(adex, "v", "w", x_range=(-75.0, 5.0), y_range=(-20.0, 450.0),
                     input=drive, trajectory=res, ax=ax4)
    ax4.set_title(f"AdEx adapting (v, w), input {drive:g} pA: {res.spike_time.size} spikes")
    ax3.legend(loc="lower right", fontsize="small", framealpha=0.9)
    ax4.legend(loc="upper left", fontsize="small", framealpha=0.9)
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
