"""Throughput of a 10,000-point LIF f-I sweep (tau_mem x I grid).

Three ways to get the same firing rates:

1. neurosim.sweep: the 10,000 parameter sets along the batch dimension of one
   ``simulate`` call per chunk (vectorised, in process); the second of two runs is timed
   (the first loads or compiles the kernel, as Brian2's warm-up run compiles its code);
2. a Python loop of single-neuron ``simulate`` calls: a random subset of
   ``--loop-sample`` sets is timed and the time is extrapolated to all sets
   (stated in the output);
3. Brian2: one NeuronGroup with ``tau`` and ``I`` as per-neuron variables,
   ``method='exact'``, the same threshold, reset and refractory period. With
   ``--brian2-python PATH`` (the Python of a venv with Brian2 2.9 and numpy < 2.4, see
   docs/performance.md) it runs there through benchmarks/peers/brian2_cases.py, in the
   modes of ``--brian2-modes`` (Cython runtime and C++ standalone by default), on the
   same (tau_mem, I) sets; its run time excludes code generation and compilation
   (reported apart). Without the option, Brian2 runs in this process if it imports.

Run: ``python benchmarks/sweep.py --brian2-python /work/peers/bin/python`` (``--help``
for sizes). Timings on shared machines are noisy: compare the ratios printed within one
run. ``--json PATH`` saves the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from peers import run_peer

import neurosim
from neurosim.sweep import Grid, Sweep, run_sweep


def _sweep(args: argparse.Namespace, dtype: str) -> Sweep:
    n = int(round(np.sqrt(args.points)))
    return Sweep(neurosim.LIF, Grid(tau_mem=np.linspace(5e-3, 50e-3, n),
                                    I=np.linspace(0.5, 5.0, args.points // n)),
                 input="I", dt=args.dt, duration=args.duration, method=args.method,
                 base={"t_ref": 2e-3}, measures=("rate",), dtype=dtype,
                 options={} if args.precise else {"precise": False})


def _closed_form(tau: np.ndarray, current: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        isi = 2e-3 + tau * np.log(current / (current - 1.0))
    return np.where(current > 1.0, 1.0 / isi, 0.0)


def bench_vectorised(sweep: Sweep, chunk_size: int | None) -> tuple[float, np.ndarray, float]:
    """(seconds, rates, seconds of the first run): the first run loads (or compiles) the
    kernel, as Brian2's warm-up run generates and compiles its code; the second is timed."""
    t0 = time.perf_counter()
    run_sweep(sweep, chunk_size=chunk_size, progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = run_sweep(sweep, chunk_size=chunk_size, progress=False)
    return time.perf_counter() - t0, ds.rate.values, first


def bench_loop(sweep: Sweep, sample: int, seed: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
    """Time single-set simulate calls on a random subset; returns (s per set, rows, rates)."""
    cols = sweep.columns()
    rows = np.random.default_rng(seed).choice(len(sweep), size=sample, replace=False)
    dtype = torch.float64 if sweep.dtype == "float64" else torch.float32
    rates = []
    t0 = time.perf_counter()
    for row in rows:
        model = neurosim.LIF(tau_mem=float(cols["tau_mem"][row]), t_ref=2e-3)
        drive = torch.full((sweep.n_steps, 1), float(cols["I"][row]), dtype=dtype)
        res = neurosim.simulate(model, drive, sweep.dt, sweep.method, record=None,
                                **sweep.options)
        rates.append(float(res.firing_rate()[0]))
    return (time.perf_counter() - t0) / sample, rows, np.asarray(rates)


def bench_brian2(sweep: Sweep) -> tuple[float, np.ndarray, str] | None:
    try:
        import brian2 as b2
    except Exception as err:  # ImportError, or numpy incompatibility inside brian2
        print(f"brian2: skipped ({type(err).__name__}: {err})")
        return None
    b2.prefs.logging.console_log_level = "ERROR"
    cols = sweep.columns()
    eqs = """dv/dt = (-v + I) / tau : 1 (unless refractory)
             tau : second
             I : 1"""

    def build(n: int):
        b2.start_scope()
        b2.defaultclock.dt = sweep.dt * b2.second
        group = b2.NeuronGroup(n, eqs, threshold="v > 1", reset="v = 0",
                               refractory=2e-3 * b2.second, method="exact")
        mon = b2.SpikeMonitor(group, record=False)
        net = b2.Network(group, mon)
        return group, mon, net

    group, mon, net = build(len(sweep))  # warm-up: code generation and compilation
    group.tau = 0.02 * b2.second
    group.I = 1.5
    net.run(10 * sweep.dt * b2.second)
    t0 = time.perf_counter()
    group, mon, net = build(len(sweep))
    group.tau = cols["tau_mem"] * b2.second
    group.I = cols["I"]
    net.run(sweep.duration * b2.second)
    seconds = time.perf_counter() - t0
    rates = np.asarray(mon.count[:], dtype=np.float64) / sweep.duration
    return seconds, rates, f"brian2 {b2.__version__}, target {b2.prefs.codegen.target}"


def bench_brian2_peer(sweep: Sweep, python: str, mode: str, timeout: float) -> dict | None:
    """The same sweep in Brian2 from its own venv (benchmarks/peers/brian2_cases.py)."""
    cols = sweep.columns()
    case = {"case": "fi_sweep", "mode": mode, "method": "exact", "dt": sweep.dt,
            "duration": sweep.duration, "t_ref": 2e-3, "return_counts": True,
            "dtype": sweep.dtype,
            "tau_mem": [float(v) for v in cols["tau_mem"]],
            "I": [float(v) for v in cols["I"]]}
    return run_peer(python, "brian2_cases.py", case, timeout=timeout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--dt", type=float, default=1e-4, help="s (default 1e-4)")
    p.add_argument("--duration", type=float, default=0.2, help="s (default 0.2)")
    p.add_argument("--method", default="exact")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--no-precise", dest="precise", action="store_false",
                   help="method='exact' with spikes at step ends (no crossing-time search)")
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--loop-sample", type=int, default=20,
                   help="sets timed in the Python loop (extrapolated to all)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--brian2-python", default=None, metavar="PATH",
                   help="Python of a venv with Brian2 2.9 (numpy < 2.4): run Brian2 there")
    p.add_argument("--brian2-modes", default="runtime,standalone",
                   help="Brian2 modes with --brian2-python (default 'runtime,standalone')")
    p.add_argument("--peer-timeout", type=float, default=1800.0, help="s per peer run")
    p.add_argument("--json", default=None, metavar="PATH", help="save the figures as JSON")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sweep = _sweep(args, args.dtype)
    n, steps = len(sweep), sweep.n_steps
    print(f"LIF f-I sweep: {n} sets x {steps} steps (dt={args.dt} s, duration={args.duration} s),"
          f" method={args.method}, precise={args.precise}, {args.dtype}, "
          f"torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    closed = _closed_form(sweep.columns()["tau_mem"], sweep.columns()["I"])

    t_vec, rate_vec, t_first = bench_vectorised(sweep, args.chunk_size)
    err = np.abs(rate_vec - closed).max()
    print(f"vectorised sweep : {t_vec:8.2f} s  {n / t_vec:10.1f} sets/s  "
          f"{n * steps / t_vec:.3e} neuron-steps/s  max |rate - closed form| = {err:.3g} Hz "
          f"(first run, loading or compiling the kernel: {t_first:.2f} s)")

    per_set, rows, rate_loop = bench_loop(sweep, args.loop_sample)
    t_loop = per_set * n
    same = np.array_equal(rate_loop, rate_vec[rows])
    print(f"python loop      : {t_loop:8.2f} s  {1 / per_set:10.1f} sets/s  "
          f"(timed {args.loop_sample} random sets, {per_set * 1e3:.1f} ms each, extrapolated "
          f"to {n}; rates identical to the sweep's: {same})")
    print(f"  ratio loop / vectorised = {t_loop / t_vec:.1f}x")

    report = {"info": {"points": n, "steps": steps, "dt": args.dt, "duration": args.duration,
                       "method": args.method, "precise": args.precise, "dtype": args.dtype,
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "python": platform.python_version(), "load_average": os.getloadavg()},
              "rows": [{"lib": "neurosim sweep (vectorised)", "run_s": t_vec,
                        "first_run_s": t_first,
                        "max_abs_rate_error_hz": float(err)},
                       {"lib": "neurosim python loop (extrapolated)", "run_s": t_loop}]}
    if args.brian2_python:
        for mode in [m.strip() for m in args.brian2_modes.split(",") if m.strip()]:
            res = bench_brian2_peer(sweep, args.brian2_python, mode, args.peer_timeout)
            if res is None:
                continue
            rate_b2 = np.asarray(res["counts"], dtype=np.float64) / sweep.duration
            diff = np.abs(rate_b2 - closed).max()
            name = "cython runtime" if mode == "runtime" else "C++ standalone"
            label = f"brian2 {mode}"
            print(f"{label:<17}: {res['run_s']:8.3g} s  {n / res['run_s']:10.1f} sets/s  "
                  f"(brian2 {res['version']}; compile {res['compile_s']:.2f} s, set-up "
                  f"{res['setup_s']:.2f} s apart; spikes on the grid: max |rate - closed "
                  f"form| = {diff:.3g} Hz)")
            print(f"  ratio brian2 ({mode}) / vectorised = {res['run_s'] / t_vec:.3g}x "
                  f"(> 1: neurosim faster)")
            report["rows"].append({"lib": f"brian2 {name}", "version": res["version"],
                                   "run_s": res["run_s"], "compile_s": res["compile_s"],
                                   "setup_s": res["setup_s"],
                                   "max_abs_rate_error_hz": float(diff),
                                   "ratio_to_neurosim": res["run_s"] / t_vec})
    else:
        b2 = bench_brian2(sweep)
        if b2 is not None:
            t_b2, rate_b2, what = b2
            diff = np.abs(rate_b2 - closed).max()
            print(f"brian2           : {t_b2:8.2f} s  {n / t_b2:10.1f} sets/s  ({what}; spikes "
                  f"on the grid: max |rate - closed form| = {diff:.3g} Hz)")
            print(f"  ratio brian2 / vectorised = {t_b2 / t_vec:.2f}x")
            report["rows"].append({"lib": f"brian2 in process ({what})", "run_s": t_b2,
                                   "max_abs_rate_error_hz": float(diff),
                                   "ratio_to_neurosim": t_b2 / t_vec})
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
