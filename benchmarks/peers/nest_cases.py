"""NEST side of neurosim's benchmarks. Run by the peers' Python, never imported by neurosim.

    /work/peers/bin/python benchmarks/peers/nest_cases.py '{"case": "cuba", "n": 4000}'

Prints logs, then one line ``RESULT {json}`` (parsed by ``benchmarks/peers.run_peer``).

NEST has no code generation: ``compile_s`` is 0. ``setup_s`` creates and connects the
nodes and calls ``nest.Prepare()``; ``run_s`` is the wall time of ``nest.Run(duration)``.
Each repeat builds the network anew (``ResetKernel``), so every timed run starts from
the same initial state; the median is reported. The synaptic delay is NEST's minimum,
one step (dt); Brian2's networks use none.

Cases (see brian2_cases.py for the equations; the same parameters here):

- ``adex_population``: ``model`` ``aeif_psc_delta`` (default) or ``aeif_psc_exp``, no
  synaptic input, ``I_e`` = linspace(0.5, 1.5, n) nA. NEST integrates the AdEx with
  GSL's adaptive RKF45 inside each step (``gsl_error_tol``, default 1e-6): report it as
  NEST's adaptive method. ``V_peak`` = 0 mV, ``t_ref`` = 0; NEST caps v at V_peak inside
  the vector field, as neurosim does.
- ``lif_poisson``: ``model`` ``iaf_psc_exp_ps`` (precise spike times, fed by
  ``poisson_generator_ps``) or ``iaf_psc_exp`` (grid, ``poisson_generator``). The
  dimensionless LIF maps to mV with E_L = V_reset = 0 mV, V_th = 1 mV, C_m = 250 pF,
  tau_m = 20 ms, tau_syn_ex = 5 ms, t_ref = 2 ms; a jump of ``weight`` in the
  dimensionless synaptic variable is a PSC amplitude of weight * C_m / tau_m pA
  (1.5 -> 18.75 pA). One Poisson generator of rate n_inputs * rate_in (100 Hz) sends an
  independent train to every neuron (a superposition of 10 trains of 10 Hz).
- ``cuba``: ``iaf_psc_exp`` with C_m = 250 pF; the voltage weights become currents
  w * C_m / tau_m (we = 1.62 mV -> 20.25 pA, wi = -9 mV -> -112.5 pA).
- ``coba``: ``iaf_cond_exp`` with C_m = 200 pF, g_L = 10 nS (tau_m 20 ms), we = 6 nS,
  wi = -67 nS (NEST's sign convention for inhibition); initial g_ex, g_in in nS.
  Both networks: 80 % excitatory; ``connectivity`` ``bernoulli`` (``pairwise_bernoulli``,
  p as in brian2_cases.py) up to 1e9 candidate pairs, above it ``fixed_total_number``
  with the same expected number of synapses (pairwise_bernoulli draws one random
  number per pair, hours at 4e5 neurons); ``connectivity_used`` says which.
"""

from __future__ import annotations

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import emit, fail, median, parse_case, peak_rss_mib, spike_stats

MS = 1e3  # s -> ms


def _kernel(nest, case):
    nest.ResetKernel()
    nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus({"resolution": case["dt"] * MS,
                          "local_num_threads": case["threads"],
                          "rng_seed": int(case["seed"]) + 1,
                          "print_time": False})


def _adex(nest, case):
    import numpy as np

    n = int(case.get("n", 1000))
    model = case.setdefault("model", "aeif_psc_delta")
    if not model.startswith("aeif_psc"):
        raise ValueError(f"adex_population needs a current-based aeif model, got {model!r}")
    params = {"C_m": 281.0, "g_L": 30.0, "E_L": -70.6, "V_th": -50.4, "Delta_T": 2.0,
              "tau_w": 144.0, "a": 4.0, "b": 80.5, "V_reset": -70.6, "V_peak": 0.0,
              "t_ref": 0.0, "V_m": -70.6, "w": 0.0,
              "gsl_error_tol": float(case.get("gsl_error_tol", 1e-6))}
    pop = nest.Create(model, n, params=params)
    lo, hi = float(case.get("i_min", 0.5)), float(case.get("i_max", 1.5))
    pop.I_e = list(np.linspace(lo, hi, n) * 1e3)  # nA -> pA
    return pop, n, {"method": f"adaptive RKF45 (GSL), gsl_error_tol={params['gsl_error_tol']}"}


def _lif_poisson(nest, case):
    n = int(case.get("n", 1000))
    model = case.setdefault("model", "iaf_psc_exp_ps")
    c_m, tau_m = 250.0, float(case.get("tau_mem", 20e-3)) * MS
    params = {"C_m": c_m, "tau_m": tau_m, "E_L": 0.0, "V_reset": 0.0, "V_th": 1.0,
              "V_m": 0.0, "t_ref": float(case.get("t_ref", 2e-3)) * MS,
              "tau_syn_ex": float(case.get("tau_syn", 5e-3)) * MS,
              "tau_syn_in": float(case.get("tau_syn", 5e-3)) * MS}
    pop = nest.Create(model, n, params=params)
    rate = int(case.get("n_inputs", 10)) * float(case.get("rate_in", 10.0))
    gen_model = "poisson_generator_ps" if model.endswith("_ps") else "poisson_generator"
    gen = nest.Create(gen_model, params={"rate": rate})
    weight = float(case.get("weight", 1.5)) * c_m / tau_m  # pA
    nest.Connect(gen, pop, "all_to_all", {"weight": weight, "delay": case["dt"] * MS})
    precise = "precise spike times" if model.endswith("_ps") else "spikes on the grid"
    return pop, n, {"method": f"exact ({precise})", "input": gen_model}


def _network(nest, case, kind):
    import numpy as np

    n = int(case.get("n", 4000))
    ne = int(round(0.8 * n))
    p = float(case["p"]) if "p" in case else min(1.0, 80.0 / n)
    rng = np.random.default_rng(int(case["seed"]))
    if kind == "cuba":
        model = case.setdefault("model", "iaf_psc_exp")
        c_m, tau_m = 250.0, 20.0
        params = {"C_m": c_m, "tau_m": tau_m, "E_L": -49.0, "V_th": -50.0, "V_reset": -60.0,
                  "t_ref": 5.0, "tau_syn_ex": 5.0, "tau_syn_in": 10.0}
        we, wi = (60 * 0.27 / 10) * c_m / tau_m, (-20 * 4.5 / 10) * c_m / tau_m
        pop = nest.Create(model, n, params=params)
        pop.V_m = list(-60.0 + 10.0 * rng.random(n))
        method = "exact"
    else:
        model = case.setdefault("model", "iaf_cond_exp")
        params = {"C_m": 200.0, "g_L": 10.0, "E_L": -60.0, "V_th": -50.0, "V_reset": -60.0,
                  "t_ref": 5.0, "E_ex": 0.0, "E_in": -80.0, "tau_syn_ex": 5.0,
                  "tau_syn_in": 10.0}
        we, wi = 6.0, -67.0
        pop = nest.Create(model, n, params=params)
        pop.V_m = list(-65.0 + 5.0 * rng.standard_normal(n))
        pop.g_ex = list(10.0 * np.maximum(4 + 1.5 * rng.standard_normal(n), 0.0))
        pop.g_in = list(10.0 * np.maximum(20 + 12 * rng.standard_normal(n), 0.0))
        method = "adaptive RKF45 (GSL)"
    exc, inh = pop[:ne], pop[ne:]
    delay = case["dt"] * MS
    rule = case.get("connectivity", "bernoulli")
    if rule not in ("bernoulli", "fixed_total_number"):
        raise ValueError(f"connectivity must be 'bernoulli' or 'fixed_total_number', "
                         f"got {rule!r}")
    used = []
    for name, src, w in (("exc", exc, we), ("inh", inh, wi)):
        k = len(src)
        if rule == "bernoulli" and k * n <= 1e9:
            conn = {"rule": "pairwise_bernoulli", "p": p, "allow_autapses": True}
        else:
            total = int(rng.binomial(k * n, p))
            conn = {"rule": "fixed_total_number", "N": total}
        used.append(f"{name}: {conn['rule']}")
        nest.Connect(src, pop, conn, {"weight": w, "delay": delay})
    used = ", ".join(used)
    extra = {"method": method, "p": p, "connectivity_used": used,
             "synapses": int(nest.GetKernelStatus("num_connections"))}
    return pop, n, extra


BUILDERS = {
    "adex_population": _adex,
    "lif_poisson": _lif_poisson,
    "cuba": lambda nest, case: _network(nest, case, "cuba"),
    "coba": lambda nest, case: _network(nest, case, "coba"),
}


def main() -> None:
    try:
        case = parse_case()
    except ValueError as err:
        fail(str(err))
    if case["case"] not in BUILDERS:
        fail(f"case {case['case']!r} is not implemented for NEST")
    import nest

    duration_ms = case["duration"] * MS
    setups, runs = [], []
    for _ in range(case["repeats"]):
        t0 = time.perf_counter()
        _kernel(nest, case)
        try:
            pop, n, extra = BUILDERS[case["case"]](nest, case)
        except ValueError as err:
            fail(str(err))
        rec = nest.Create("spike_recorder")
        nest.Connect(pop, rec)
        nest.Prepare()
        setups.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        nest.Run(duration_ms)
        runs.append(time.perf_counter() - t0)
        nest.Cleanup()
    ev = rec.get("events")
    first = int(pop[0].global_id)
    senders = ev["senders"] - first
    times = ev["times"] / MS
    result = {"ok": True, "peer": "nest", "version": nest.__version__, "case": case["case"],
              "model": case.get("model"), "dt": case["dt"], "duration": case["duration"],
              "repeats": case["repeats"], "threads": case["threads"], "mode": "nest",
              "setup_s": median(setups), "compile_s": 0.0, "run_s": median(runs),
              "run_s_all": runs, "n": n}
    result.update(extra)
    if case["case"] in ("cuba", "coba"):
        result.update(spike_stats(senders, times, n, case["duration"]))
    else:
        count = int(senders.size)
        result.update({"spikes": count, "rate_hz": count / (n * case["duration"])})
    if not math.isfinite(result["rate_hz"]):
        fail("non-finite rate")
    result.update(peak_rss_mib())
    emit(result)


if __name__ == "__main__":
    main()
