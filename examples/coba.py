"""Brette et al. (2007) COBA network: 4000 conductance-based LIF neurons.

Benchmark 1 of Brette et al. (2007) (Vogels & Abbott 2005), as in Brian2's COBA example:
C = 200 pF, gL = 10 nS (taum 20 ms), El -60 mV, Vt -50 mV, Vr -60 mV, Ee 0 mV,
Ei -80 mV, taue 5 ms, taui 10 ms, refractory 5 ms, we = 6 nS, wi = 67 nS, connection
probability 0.02 (80/n for other sizes), 80 % excitatory, v0 = -65 + 5 N(0,1) mV,
ge0 = 40 + 15 N(0,1) nS, gi0 = 200 + 120 N(0,1) nS (clipped at 0), dt 0.1 ms. The cell
is :class:`neurosim.CobaLIF`, integrated with forward Euler as in the Brian2 benchmark
(``--method exponential_euler`` for the more accurate scheme, about 3 exponentials per
neuron and step); the projections jump g_e and g_i.

    python examples/coba.py --duration 1 --json
    python examples/coba.py --out coba.png
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import neurosim as ns
from neurosim.network import cv_isi


def build(n_neurons: int = 4000, seed: int = 0, *, p: float | None = None,
          dtype: torch.dtype = torch.float64, backend: str = "engine",
          rate_monitor: bool = False, method: str = "euler") -> tuple[ns.Network, ns.SpikeMonitor,
                                               ns.RateMonitor | None]:
    """The COBA network, its spike monitor and (optionally) a 1 ms rate monitor."""
    ne = int(round(0.8 * n_neurons))
    p = min(1.0, 80.0 / n_neurons) if p is None else p
    cell = ns.CobaLIF(c_m=200.0, g_leak=10.0, v_leak=-60.0, v_th=-50.0, v_reset=-60.0,
                      e_exc=0.0, e_inh=-80.0, tau_exc=5e-3, tau_inh=10e-3, t_ref=5e-3)
    init = {"v": ("normal", -65.0, 5.0),
            "g_e": lambda rng, n: np.maximum(40.0 + 15.0 * rng.standard_normal(n), 0.0),
            "g_i": lambda rng, n: np.maximum(200.0 + 120.0 * rng.standard_normal(n), 0.0)}
    pop = ns.Population(cell, n_neurons, init=init, seed=seed, method=method)
    ce = ns.Projection(pop[:ne], pop, "g_e", 6.0, p=p, seed=seed + 1)  # nS
    ci = ns.Projection(pop[ne:], pop, "g_i", 67.0, p=p, seed=seed + 2)
    spikes = ns.SpikeMonitor(pop)
    rate = ns.RateMonitor(pop, bin=1e-3) if rate_monitor else None
    objs = [pop, ce, ci, spikes] + ([rate] if rate is not None else [])
    return ns.Network(*objs, dt=1e-4, dtype=dtype, backend=backend), spikes, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1.0, help="biological seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of connectivity and v0")
    parser.add_argument("--n-neurons", type=int, default=4000, help="network size")
    parser.add_argument("--float32", action="store_true", help="single precision")
    parser.add_argument("--method", default="euler", help="integrator of the cells")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", default=None, help="write a raster + rate figure (PNG)")
    parser.add_argument("--smoke", action="store_true", help="short run, for tests")
    args = parser.parse_args()
    n, duration = args.n_neurons, args.duration
    if args.smoke:
        n, duration = 1000, 0.1
    dtype = torch.float32 if args.float32 else torch.float64
    t0 = time.perf_counter()
    net, spikes, rate = build(n, args.seed, dtype=dtype, rate_monitor=args.out is not None,
                                method=args.method)
    net.run(1e-4)  # builds, compiles (or loads the cached kernel) and takes one step
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(duration - 1e-4)
    run_s = time.perf_counter() - t0
    mem = net.memory()
    out = {"n": n, "duration": duration, "seed": args.seed, "dtype": str(dtype),
           "synapses": mem["n_synapses"], "spikes": spikes.num_spikes,
           "rate_hz": spikes.num_spikes / (n * duration), "cv_isi": cv_isi(spikes),
           "run_s": run_s, "setup_s": setup_s,
           "synapse_bytes": mem["synapses"], "ring_bytes": mem["rings"]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"COBA {n} neurons, {duration:g} s: {out['rate_hz']:.2f} Hz, "
              f"CV(ISI) {out['cv_isi']:.3f}, run {run_s:.3f} s, set-up {setup_s:.2f} s")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 1]})
        keep = spikes.i < min(n, 1000)
        a1.plot(spikes.t[keep] * 1e3, spikes.i[keep], ",k", rasterized=True)
        a1.set_ylabel("neuron")
        a1.set_title(f"COBA, {n} neurons: {out['rate_hz']:.1f} Hz, "
                     f"CV(ISI) {out['cv_isi']:.2f}")
        a2.plot((rate.t + 0.5e-3) * 1e3, rate.rate, "k", lw=0.8)
        a2.set_xlabel("time (ms)")
        a2.set_ylabel("rate (Hz)")
        a2.set_ylim(bottom=0)
        fig.tight_layout()
        fig.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
