r"""Brunel (2000) sparse network of excitatory and inhibitory LIF neurons, in four regimes.

The model A of Brunel (2000, J Comput Neurosci 8:183): :math:`N_E = 4 N_I` LIF neurons
(10000 E and 2500 I at ``--scale 1``), :math:`\tau_m = 20` ms, :math:`\theta = 20` mV,
:math:`V_r = 10` mV, :math:`t_\mathrm{ref} = 2` ms, delta-current synapses (a spike makes
the membrane jump by *J* = 0.1 mV, or :math:`-gJ` from an inhibitory neuron) with a
delay *D* = 1.5 ms, fixed in-degrees :math:`C_E = 0.1 N_E` and :math:`C_I = 0.1 N_I`,
and external drive from :math:`C_E` Poisson sources per neuron of rate
:math:`\nu_\mathrm{ext} = \eta\,\nu_\mathrm{thr}`,
:math:`\nu_\mathrm{thr} = \theta / (J C_E \tau_m)`, dt 0.1 ms. The relative inhibition *g*
and the external drive :math:`\eta` choose the regime (Brunel's Fig. 8):

* ``SR``: synchronous regular, g = 3, eta = 2;
* ``AI``: asynchronous irregular, g = 5, eta = 2;
* ``SI-fast``: synchronous irregular with a fast population oscillation, g = 6, eta = 4;
* ``SI-slow``: synchronous irregular, slow oscillation, g = 4.5, eta = 0.9.

The external sources of a neuron are one ``PoissonInput(multiple=True)`` source of rate
:math:`C_E \nu_\mathrm{ext}` (several spikes per step; the superposition of
:math:`C_E` independent Poisson trains) jumping *v* by *J* = 0.1 mV. With ``--scale``
below 1 the network shrinks with the in-degrees (:math:`C_E = 0.1 N_E`); the recurrent
weight becomes :math:`J = 0.1\,\mathrm{mV} \times 1000 / C_E` so that the mean recurrent
input :math:`J C_E` keeps its published value (its fluctuations grow as
:math:`1/\sqrt{C_E}`), and the external drive is the published one at every scale.

    python examples/brunel.py --json                       # AI regime, 1 s
    python examples/brunel.py --regime all --out brunel.png
    python examples/brunel.py --regime SR --scale 0.2 --duration 0.5 --json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

import neurosim as ns
from neurosim.network import cv_isi

#: (g, eta) of the four regimes of Brunel (2000), Fig. 8
REGIMES = {"SR": (3.0, 2.0), "AI": (5.0, 2.0), "SI-fast": (6.0, 4.0), "SI-slow": (4.5, 0.9)}
TAU_M, THETA, V_R, T_REF, J_PUB, DELAY, DT = 20e-3, 20.0, 10.0, 2e-3, 0.1, 1.5e-3, 1e-4


def build(regime: str = "AI", scale: float = 1.0, seed: int = 0, *, g: float | None = None,
          eta: float | None = None, dtype: torch.dtype = torch.float64,
          backend: str = "engine") -> tuple[ns.Network, ns.SpikeMonitor, ns.RateMonitor]:
    """The Brunel network of one regime (or explicit ``g``, ``eta``).

    Returns the network, a spike monitor of all neurons (excitatory first) and a rate
    monitor (counts per step).
    """
    g0, eta0 = REGIMES[regime]
    g = g0 if g is None else g
    eta = eta0 if eta is None else eta
    n_e = int(round(10000 * scale))
    n_i = n_e // 4
    c_e, c_i = max(1, int(round(0.1 * n_e))), max(1, int(round(0.1 * n_i)))
    j = J_PUB * 1000.0 / c_e                     # mV; 0.1 mV at scale 1
    nu_thr = THETA / (J_PUB * 1000.0 * TAU_M)     # Hz, per external source
    ext_rate = eta * nu_thr * 1000.0              # Hz, C_E sources of 0.1 mV (scale 1)
    cell = ns.LIF(tau_mem=TAU_M, v_leak=0.0, v_th=THETA, v_reset=V_R, t_ref=T_REF)
    # refractory neurons are "insensitive to stimulation" (Brunel 2000): jumps discarded
    pop = ns.Population(cell, n_e + n_i, init={"v": ("uniform", V_R, THETA)}, seed=seed,
                        name="brunel", refractory_input=False)
    exc = ns.Projection(pop[:n_e], pop, "v", j, rule="fixed_indegree", k=c_e, delay=DELAY,
                        autapses=False, seed=seed + 1)
    inh = ns.Projection(pop[n_e:], pop, "v", -g * j, rule="fixed_indegree", k=c_i,
                        delay=DELAY, autapses=False, seed=seed + 2)
    ext = ns.PoissonInput(n_e + n_i, ext_rate, seed=seed + 3, multiple=True, name="external")
    drive = ns.Projection(ext, pop, "v", J_PUB, rule="one_to_one")
    spikes = ns.SpikeMonitor(pop)
    rate = ns.RateMonitor(pop, bin=DT)
    net = ns.Network(pop, ext, exc, inh, drive, spikes, rate, dt=DT, dtype=dtype,
                     backend=backend)
    return net, spikes, rate


def statistics(spikes: ns.SpikeMonitor, rate: ns.RateMonitor, t0: float) -> dict:
    """Rate (Hz per neuron), mean CV of the ISIs, Fano factor of the population count in
    1 ms bins (1 for independent Poisson neurons, large when synchronous) and the
    frequency of the largest peak of the population rate's spectrum above 5 Hz, all
    after ``t0`` seconds."""
    n = spikes.source.n
    keep = spikes.t > t0
    counts = rate.counts[int(round(t0 / DT)):]
    span = counts.size * DT
    k = int(round(1e-3 / DT))
    per_ms = counts[:counts.size // k * k].reshape(-1, k).sum(1).astype(np.float64)
    fano = float(per_ms.var() / per_ms.mean()) if per_ms.mean() > 0 else math.nan
    x = per_ms - per_ms.mean()
    power = np.abs(np.fft.rfft(x)) ** 2
    freq = np.fft.rfftfreq(x.size, 1e-3)
    band = freq > 5.0
    osc = float(freq[band][np.argmax(power[band])]) if band.any() and x.size > 8 else math.nan
    return {"rate_hz": float(keep.sum() / (n * span)), "cv_isi": cv_isi(spikes, t_start=t0),
            "pop_fano": fano, "osc_hz": osc}


def run(regime: str, scale: float, duration: float, seed: int,
        dtype: torch.dtype = torch.float64) -> tuple[dict, ns.SpikeMonitor, ns.RateMonitor]:
    """Build and run one regime; the statistics (after a 100 ms transient, or half the run
    if shorter) with the set-up and run times."""
    t0 = time.perf_counter()
    net, spikes, rate = build(regime, scale, seed, dtype=dtype)
    net.run(DT)  # builds, compiles (or loads the cached kernel) and takes one step
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(duration - DT)
    run_s = time.perf_counter() - t0
    g, eta = REGIMES[regime]
    stats = statistics(spikes, rate, min(0.1, duration / 2))
    out = {"regime": regime, "g": g, "eta": eta, "n": spikes.source.n, "scale": scale,
           "duration": duration, "seed": seed, "synapses": net.memory()["n_synapses"],
           "spikes": spikes.num_spikes, **stats, "run_s": run_s, "setup_s": setup_s}
    return out, spikes, rate


def plot(results: list[tuple[dict, ns.SpikeMonitor, ns.RateMonitor]], path: str) -> None:
    """Per regime: a raster of 50 excitatory neurons and the population rate (0.5 ms bins)
    over the last 100 ms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(results)
    fig, axes = plt.subplots(2, cols, figsize=(3.4 * cols + 0.6, 4.2), squeeze=False,
                             sharex="col", gridspec_kw={"height_ratios": [2, 1]})
    for c, (out, spikes, rate) in enumerate(results):
        t1 = out["duration"]
        t0 = max(0.0, t1 - 0.1)
        keep = (spikes.i < 50) & (spikes.t > t0)
        a1, a2 = axes[0, c], axes[1, c]
        a1.plot(spikes.t[keep] * 1e3, spikes.i[keep], "|k", ms=3, mew=0.6)
        a1.set_title(f"{out['regime']} (g={out['g']:g}, η={out['eta']:g})\n"
                     f"{out['rate_hz']:.1f} Hz, CV {out['cv_isi']:.2f}", fontsize=9)
        a1.set_ylim(-1, 50)
        k = int(round(0.5e-3 / DT))
        counts = rate.counts
        m = counts.size // k
        binned = counts[:m * k].reshape(m, k).sum(1) / (k * DT * spikes.source.n)
        tb = (np.arange(m) + 0.5) * k * DT
        sel = tb > t0
        a2.plot(tb[sel] * 1e3, binned[sel], "k", lw=0.6)
        a2.set_xlabel("time (ms)")
        a2.set_ylim(bottom=0)
        if c == 0:
            a1.set_ylabel("neuron")
            a2.set_ylabel("rate (Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regime", default="AI", choices=[*REGIMES, "all"],
                        help="the regime (g, eta) of Brunel's Fig. 8, or all four")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="network size relative to 10000 E + 2500 I neurons")
    parser.add_argument("--duration", type=float, default=1.0, help="biological seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of connectivity, v0, input")
    parser.add_argument("--float32", action="store_true", help="single precision")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", default=None, help="write rasters + rates (PNG)")
    parser.add_argument("--smoke", action="store_true", help="small and short, for tests")
    args = parser.parse_args()
    scale, duration, regimes = args.scale, args.duration, args.regime
    if args.smoke:
        scale, duration, regimes = 0.05, 0.12, "all"
    names = list(REGIMES) if regimes == "all" else [regimes]
    dtype = torch.float32 if args.float32 else torch.float64
    results = [run(r, scale, duration, args.seed, dtype) for r in names]
    if args.json:
        outs = [r[0] for r in results]
        print(json.dumps(outs[0] if len(outs) == 1 else {"regimes": outs}))
    else:
        for out, _, _ in results:
            print(f"Brunel {out['regime']:7s} {out['n']} neurons, {duration:g} s: "
                  f"{out['rate_hz']:6.1f} Hz, CV(ISI) {out['cv_isi']:.2f}, population "
                  f"Fano {out['pop_fano']:7.1f}, peak {out['osc_hz']:5.0f} Hz, "
                  f"run {out['run_s']:.2f} s, set-up {out['setup_s']:.2f} s")
    if args.out:
        plot(results, args.out)


if __name__ == "__main__":
    main()
