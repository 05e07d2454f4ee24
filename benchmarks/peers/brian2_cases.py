"""Brian2 side of neurosim's benchmarks. Run by the peers' Python, never imported by neurosim.

    /work/peers/bin/python benchmarks/peers/brian2_cases.py '{"case": "adex_population", "n": 100}'
    echo '{"case": "cuba", "mode": "standalone"}' | python benchmarks/peers/brian2_cases.py -

Prints logs, then one line ``RESULT {json}`` (parsed by ``benchmarks/peers.run_peer``).

Case fields (besides ``case``; see ``_common.DEFAULTS`` for dt, duration, repeats, seed):

- ``mode``: ``"runtime"`` (Cython code generation, the default) or ``"standalone"``
  (C++ standalone: one binary per case, built once, run ``repeats`` times).
- ``method``: Brian2 integration method (``euler``, ``rk4``, ``exact``); per case default.
- ``n``: number of neurons.

Times: ``setup_s`` builds the objects (and, in standalone mode, records them);
``compile_s`` is code generation and compilation (runtime: a short warm-up run of
10 steps on the same network, then ``restore()``; standalone: ``device.build(run=False)``);
``run_s`` is the median over ``repeats`` of the timed run, compile excluded
(runtime: wall time of ``Network.run``, which includes Brian2's per-run preparation,
also given alone as ``loop_s``, the time inside the main loop; standalone: the
simulation time the binary measures itself; the binary's process wall time, which adds
loading and writing arrays, is ``run_wall_s``).

The models (written from the published equations):

- ``adex_population``: Brette & Gerstner (2005) AdEx, C = 281 pF, gL = 30 nS,
  EL = -70.6 mV, VT = -50.4 mV, DeltaT = 2 mV, tauw = 144 ms, a = 4 nS, b = 80.5 pA,
  Vr = EL, spike at v > Vpeak = 0 mV, no refractory period; the membrane potential
  inside the vector field is capped at Vpeak (as neurosim's and NEST's AdEx do).
  I = linspace(``i_min``, ``i_max``, n) nA (defaults 0.5, 1.5), constant.
- ``lif_poisson``: tau_m dv/dt = -v + i (v dimensionless, threshold 1, reset 0,
  refractory ``t_ref`` = 2 ms, v held), tau_s di/dt = -i (tau_s = ``tau_syn`` = 5 ms);
  each neuron gets ``n_inputs`` (10) independent Poisson trains of ``rate_in`` (10 Hz),
  each spike adds ``weight`` (1.5) to i (``PoissonInput``). Default method ``exact``.
- ``fi_sweep``: tau dv/dt = -v + I, per-neuron ``tau_mem`` and ``I`` (lists in the case,
  or a ``points`` grid built as benchmarks/sweep.py does), threshold 1, reset 0,
  refractory 2 ms, ``exact``. ``return_counts`` adds the per-neuron spike counts.
- ``cuba``: Brette et al. (2007) benchmark 2 as in Brian2's CUBA example: taum 20 ms,
  taue 5 ms, taui 10 ms, Vt -50 mV, Vr -60 mV, El -49 mV, refractory 5 ms,
  we = 60*0.27/10 mV, wi = -20*4.5/10 mV, v0 uniform in [Vr, Vt], ``exact``.
- ``coba``: Brette et al. (2007) benchmark 1 (Vogels & Abbott 2005): taum 20 ms,
  El -60 mV, Vt -50 mV, Vr -60 mV, Ee 0 mV, Ei -80 mV, taue 5 ms, taui 10 ms,
  refractory 5 ms, conductances in units of the leak conductance (gL = 10 nS):
  we = 0.6 (6 nS), wi = 6.7 (67 nS); v0 = -65 + 5*randn mV, ge0 = 4 + 1.5*randn,
  gi0 = 20 + 12*randn (clipped at 0); ``euler`` (the published Brian script's choice).
  Networks: 80 % excitatory, connection probability ``p`` (default 0.02 at 4000 neurons,
  80/n in general, so that each neuron keeps about 80 inputs when ``n`` grows, as in
  Brian2's own CUBA speed test); no synaptic delay. The result adds the mean CV of the
  ISIs over neurons with at least 3 spikes and the peak resident memory.
- ``brunel``: Brunel (2000) model A as ``examples/brunel.py`` builds it: ``scale`` (1:
  10000 E + 2500 I), ``regime`` (``SR``, ``AI``, ``SI-fast``, ``SI-slow``: g, eta), tau
  20 ms, theta 20 mV, Vr 10 mV, refractory 2 ms, v held and synaptic jumps discarded
  while refractory, v0 uniform in [Vr, theta]; fixed in-degrees C_E = 0.1 N_E,
  C_I = 0.1 N_I (no autapses, drawn in numpy), J = 0.1 mV * 1000 / C_E, -g J from
  inhibitory neurons, delay 1.5 ms; external drive ``PoissonInput`` of 1000 trains (C_E
  at scale 1) at eta * nu_thr with jumps of 0.1 mV (nu_thr = theta / (0.1 mV * 1000 *
  tau)); ``exact``.
  The result adds, after ``t0`` (0.1 s), the rate, mean CV of the ISIs, the Fano
  factor of the population count in 1 ms bins and the largest spectral peak above 5 Hz.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import emit, fail, median, parse_case, peak_rss_mib, scratch_dir, spike_stats


def _adex(b2, case):
    n = int(case.get("n", 1000))
    ms, mV, pA, nA, nS, pF = b2.ms, b2.mV, b2.pA, b2.nA, b2.nS, b2.pF
    ns = {"C": 281 * pF, "gL": 30 * nS, "EL": -70.6 * mV, "VT": -50.4 * mV, "DeltaT": 2 * mV,
          "tauw": 144 * ms, "a": 4 * nS, "b": 80.5 * pA, "Vr": -70.6 * mV, "Vpeak": 0 * mV}
    eqs = """
    dv/dt = (gL*(EL - vbar) + gL*DeltaT*exp((vbar - VT)/DeltaT) - w + I)/C : volt
    dw/dt = (a*(vbar - EL) - w)/tauw : amp
    vbar = clip(v, -1*volt, Vpeak) : volt
    I : amp (constant)
    """
    g = b2.NeuronGroup(n, eqs, threshold="v > Vpeak", reset="v = Vr; w += b",
                       method=case.setdefault("method", "rk4"), namespace=ns, name="adex")
    g.v = ns["EL"]
    g.w = 0 * pA
    lo, hi = float(case.get("i_min", 0.5)), float(case.get("i_max", 1.5))
    g.I = __import__("numpy").linspace(lo, hi, n) * nA
    mon = b2.SpikeMonitor(g, record=False)

    def stats():
        count = int(mon.num_spikes)
        return {"n": n, "spikes": count, "rate_hz": count / (n * case["duration"])}

    return [g, mon], stats


def _lif_poisson(b2, case):
    n = int(case.get("n", 1000))
    ns = {"tau_m": float(case.get("tau_mem", 20e-3)) * b2.second,
          "tau_s": float(case.get("tau_syn", 5e-3)) * b2.second}
    eqs = """
    dv/dt = (-v + isyn)/tau_m : 1 (unless refractory)
    disyn/dt = -isyn/tau_s : 1
    """
    g = b2.NeuronGroup(n, eqs, threshold="v > 1", reset="v = 0",
                       refractory=float(case.get("t_ref", 2e-3)) * b2.second,
                       method=case.setdefault("method", "exact"), namespace=ns, name="lif")
    inp = b2.PoissonInput(g, "isyn", int(case.get("n_inputs", 10)),
                          float(case.get("rate_in", 10.0)) * b2.Hz,
                          weight=float(case.get("weight", 1.5)))
    mon = b2.SpikeMonitor(g, record=False)

    def stats():
        count = int(mon.num_spikes)
        return {"n": n, "spikes": count, "rate_hz": count / (n * case["duration"])}

    return [g, inp, mon], stats


def sweep_grid(case):
    """(tau_mem, I) per neuron: from the case's lists, or the grid of benchmarks/sweep.py."""
    import numpy as np

    if "tau_mem" in case and "I" in case:
        return (np.asarray(case["tau_mem"], dtype=np.float64),
                np.asarray(case["I"], dtype=np.float64))
    points = int(case.get("points", 10_000))
    k = int(round(math.sqrt(points)))
    tau, cur = np.meshgrid(np.linspace(5e-3, 50e-3, k), np.linspace(0.5, 5.0, points // k),
                           indexing="ij")
    return tau.ravel(), cur.ravel()


def _fi_sweep(b2, case):
    tau, cur = sweep_grid(case)
    n = tau.size
    eqs = """
    dv/dt = (-v + I)/tau : 1 (unless refractory)
    tau : second (constant)
    I : 1 (constant)
    """
    g = b2.NeuronGroup(n, eqs, threshold="v > 1", reset="v = 0",
                       refractory=float(case.get("t_ref", 2e-3)) * b2.second,
                       method=case.setdefault("method", "exact"), name="fi")
    g.tau = tau * b2.second
    g.I = cur
    mon = b2.SpikeMonitor(g, record=False)

    def stats():
        counts = mon.count[:]
        out = {"n": n, "spikes": int(counts.sum()),
               "rate_hz": float(counts.sum()) / (n * case["duration"])}
        if case.get("return_counts"):
            out["counts"] = [int(c) for c in counts]
        return out

    return [g, mon], stats


def network_size(case):
    n = int(case.get("n", 4000))
    p = float(case["p"]) if "p" in case else min(1.0, 80.0 / n)
    return n, int(round(0.8 * n)), p


def _network(b2, case, kind):
    import numpy as np

    n, ne, p = network_size(case)
    ms, mV = b2.ms, b2.mV
    rng = np.random.default_rng(int(case["seed"]))
    if kind == "cuba":
        ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV,
              "Vr": -60 * mV, "El": -49 * mV, "we": (60 * 0.27 / 10) * mV,
              "wi": (-20 * 4.5 / 10) * mV}
        eqs = """
        dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """
        method = case.setdefault("method", "exact")
    else:
        ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV,
              "Vr": -60 * mV, "El": -60 * mV, "Ee": 0 * mV, "Ei": -80 * mV,
              "we": 6.0 / 10.0, "wi": 67.0 / 10.0}
        eqs = """
        dv/dt = ((El - v) + ge*(Ee - v) + gi*(Ei - v))/taum : volt (unless refractory)
        dge/dt = -ge/taue : 1
        dgi/dt = -gi/taui : 1
        """
        method = case.setdefault("method", "euler")
    g = b2.NeuronGroup(n, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms,
                       method=method, namespace=ns, name=kind)
    # initial values drawn in numpy with the case's seed (the same draws for every mode)
    if kind == "cuba":
        g.v = (-60 + 10 * rng.random(n)) * mV
        g.ge = 0 * mV
        g.gi = 0 * mV
    else:
        g.v = (-65 + 5 * rng.standard_normal(n)) * mV
        g.ge = np.maximum(4 + 1.5 * rng.standard_normal(n), 0.0)
        g.gi = np.maximum(20 + 12 * rng.standard_normal(n), 0.0)
    ce = b2.Synapses(g[:ne], g, on_pre="ge += we", namespace=ns, name="exc")
    ci = b2.Synapses(g[ne:], g, on_pre="gi += wi", namespace=ns, name="inh")
    # Bernoulli connectivity, drawn with the skip algorithm (cost per synapse, not per pair)
    ce.connect(j="k for k in sample(N_post, p=p)", namespace={"p": p})
    ci.connect(j="k for k in sample(N_post, p=p)", namespace={"p": p})
    mon = b2.SpikeMonitor(g)

    def stats():
        out = {"n": n, "p": p, "synapses": int(len(ce) + len(ci))}
        out.update(spike_stats(mon.i[:], mon.t_[:], n, case["duration"]))
        return out

    return [g, ce, ci, mon], stats


BRUNEL_REGIMES = {"SR": (3.0, 2.0), "AI": (5.0, 2.0), "SI-fast": (6.0, 4.0),
                  "SI-slow": (4.5, 0.9)}


def _fixed_indegree(rng, n_pre, n_post, k, offset):
    """k distinct sources in [0, n_pre) per target, no autapse (targets offset by
    ``offset`` relative to the sources' indices)."""
    import numpy as np

    pre, post = [], []
    for j in range(n_post):
        own = j + offset
        if 0 <= own < n_pre:
            src = rng.choice(n_pre - 1, k, replace=False)
            src[src >= own] += 1
        else:
            src = rng.choice(n_pre, k, replace=False)
        pre.append(src)
        post.append(np.full(k, j))
    return np.concatenate(pre), np.concatenate(post)


def _brunel(b2, case):
    import numpy as np

    ms, mV = b2.ms, b2.mV
    g_, eta = BRUNEL_REGIMES[case.get("regime", "AI")]
    case.setdefault("method", "exact")
    n_e = int(round(10000 * float(case.get("scale", 1.0))))
    n_i = n_e // 4
    n = n_e + n_i
    c_e, c_i = max(1, round(0.1 * n_e)), max(1, round(0.1 * n_i))
    tau, theta, vr = 20 * ms, 20 * mV, 10 * mV
    j = 0.1 * 1000.0 / c_e * mV
    nu_thr = 20.0 / (0.1 * 1000 * 20e-3)  # Hz
    ns = {"tau": tau, "theta": theta, "Vr": vr, "J": j, "JI": -g_ * j, "Jext": 0.1 * mV}
    grp = b2.NeuronGroup(n, "dv/dt = -v/tau : volt (unless refractory)",
                         threshold="v > theta", reset="v = Vr", refractory=2 * ms,
                         method="exact", namespace=ns, name="brunel")
    rng = np.random.default_rng(int(case["seed"]))
    grp.v = (10 + 10 * rng.random(n)) * mV
    ce = b2.Synapses(grp[:n_e], grp, on_pre="v_post += J * int(not_refractory_post)",
                     delay=1.5 * ms, namespace=ns, name="exc")
    ci = b2.Synapses(grp[n_e:], grp, on_pre="v_post += JI * int(not_refractory_post)",
                     delay=1.5 * ms, namespace=ns, name="inh")
    i_e, j_e = _fixed_indegree(rng, n_e, n, c_e, 0)
    i_i, j_i = _fixed_indegree(rng, n_i, n, c_i, -n_e)
    ce.connect(i=i_e, j=j_e)
    ci.connect(i=i_i, j=j_i)
    # the published external drive at every scale: 1000 trains of 0.1 mV
    ext = b2.PoissonInput(grp, "v", 1000, eta * nu_thr * b2.Hz,
                          weight="Jext * int(not_refractory)")
    mon = b2.SpikeMonitor(grp)
    t0 = float(case.get("t0", 0.1))

    def stats():
        i, t = np.asarray(mon.i[:]), np.asarray(mon.t_[:])
        keep = t > t0
        span = case["duration"] - t0
        out = {"n": n, "regime": case.get("regime", "AI"), "g": g_, "eta": eta,
               "synapses": int(len(ce) + len(ci))}
        out.update(spike_stats(i[keep], t[keep], n, span))
        counts = np.bincount(np.floor((t[keep] - t0) / 1e-3).astype(np.int64),
                             minlength=int(round(span / 1e-3)))[:int(round(span / 1e-3))]
        counts = counts.astype(np.float64)
        out["pop_fano"] = float(counts.var() / counts.mean()) if counts.mean() > 0 else None
        x = counts - counts.mean()
        power = np.abs(np.fft.rfft(x)) ** 2
        freq = np.fft.rfftfreq(x.size, 1e-3)
        band = freq > 5.0
        out["osc_hz"] = float(freq[band][np.argmax(power[band])])
        return out

    return [grp, ce, ci, ext, mon], stats


BUILDERS = {
    "adex_population": _adex,
    "lif_poisson": _lif_poisson,
    "fi_sweep": _fi_sweep,
    "cuba": lambda b2, case: _network(b2, case, "cuba"),
    "coba": lambda b2, case: _network(b2, case, "coba"),
    "brunel": _brunel,
}


def main() -> None:
    try:
        case = parse_case()
    except ValueError as err:
        fail(str(err))
    mode = case.get("mode", "runtime")
    if mode not in ("runtime", "standalone"):
        fail(f"mode must be 'runtime' or 'standalone', got {mode!r}")
    import brian2 as b2
    import numpy as np

    b2.prefs.logging.console_log_level = "WARNING"
    b2.prefs.core.default_float_dtype = np.float64 if case.get("dtype", "float64") == \
        "float64" else np.float32
    key = "-".join(str(case.get(k, "")) for k in ("case", "method", "n", "points", "mode",
                                                   "scale"))
    if mode == "standalone":
        build_dir = os.path.join(scratch_dir("brian2"), key)
        b2.set_device("cpp_standalone", build_on_run=False, directory=build_dir)
        # 0: no OpenMP (one thread); k > 1: k OpenMP threads
        threads = case["threads"]
        b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads == 1 else threads
    else:
        b2.prefs.codegen.target = "cython"
        b2.prefs.codegen.runtime.cython.cache_dir = scratch_dir("brian2-cython")
    b2.defaultclock.dt = case["dt"] * b2.second
    b2.seed(int(case["seed"]))
    duration = case["duration"] * b2.second

    t0 = time.perf_counter()
    objects, stats = BUILDERS[case["case"]](b2, case)
    net = b2.Network(*objects)
    result = {"ok": True, "peer": "brian2", "version": b2.__version__, "mode": mode,
              "case": case["case"], "method": case["method"], "dt": case["dt"],
              "duration": case["duration"], "repeats": case["repeats"],
              "threads": case["threads"] if mode == "standalone" else 1}
    runs, loops = [], []
    if mode == "runtime":
        net.store("initial")
        result["setup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        net.run(10 * b2.defaultclock.dt)  # code generation + Cython compilation (cached)
        result["compile_s"] = time.perf_counter() - t0
        for _ in range(case["repeats"]):
            net.restore("initial")
            t0 = time.perf_counter()
            net.run(duration)
            runs.append(time.perf_counter() - t0)
            loops.append(float(b2.device._last_run_time))
        result["loop_s"] = median(loops)
    else:
        net.run(duration)  # recorded, not run: build_on_run=False
        result["setup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        b2.device.build(directory=build_dir, compile=True, run=False,
                        clean=bool(case.get("clean", False)))
        result["compile_s"] = time.perf_counter() - t0
        # the binary runs under _memwrap.py, which records its own peak memory (forked
        # from this Python, its ru_maxrss would include this process's memory)
        mem_file = os.path.join(build_dir, "maxrss.json")
        wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_memwrap.py")
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [sys.executable, "-S", wrapper,
                                                        mem_file, "./main"]
        walls, binary_mib = [], []
        for _ in range(case["repeats"]):
            t0 = time.perf_counter()
            b2.device.run(with_output=False)
            walls.append(time.perf_counter() - t0)
            runs.append(float(b2.device._last_run_time))
            with open(mem_file) as fh:
                binary_mib.append(json.load(fh)["maxrss_mib"])
        result["run_wall_s"] = median(walls)
        result["binary_maxrss_mib"] = max(binary_mib)
    result["run_s"] = median(runs)
    result["run_s_all"] = runs
    result.update(stats())
    result.update(peak_rss_mib())
    if "binary_maxrss_mib" in result:  # the simulation ran in the binary
        result["peak_rss_mib"] = result["binary_maxrss_mib"]
    emit(result)


if __name__ == "__main__":
    main()
