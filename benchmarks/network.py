"""Brette et al. (2007) CUBA and COBA networks: neurosim beside Brian2 and NEST.

    python benchmarks/network.py --quick \\
        --brian2-python /work/peers/bin/python --nest-python /work/peers/bin/python
    python benchmarks/network.py --full ...            # 1 s, seeds 0,1,2, 4000 neurons
    python benchmarks/network.py --full --n 40000,400000 --seeds 0 ...   # scale runs

Networks (issue 15): 4000 neurons (``--n``), 80 % excitatory, connection probability
0.02 at 4000 neurons and 80/n above (each neuron keeps about 80 inputs, as Brian2's own
CUBA speed test scales it), dt = 0.1 ms, one thread everywhere. The parameters and the
equations are in benchmarks/peers/brian2_cases.py and nest_cases.py:

- CUBA (Brian2's CUBA example): Brian2 ``exact`` (Cython runtime and C++ standalone),
  NEST ``iaf_psc_exp``.
- COBA (Brette et al. 2007 benchmark 1): Brian2 ``euler``, NEST ``iaf_cond_exp``
  (GSL RKF45).

neurosim: when ``neurosim.Network`` exists, ``examples/cuba.py`` / ``examples/coba.py``
run in a subprocess with ``--duration D --json`` (plus ``--seed`` and ``--n-neurons``
when the example's ``--help`` lists them) and their one JSON object is read: at least
``rate_hz``, ``cv_isi``, ``run_s`` (simulation, excluding set-up) and ``setup_s``.
Without ``neurosim.Network`` the column says "neurosim: networks not available yet".

Per library and size: the median run time over the seeds (compile and set-up reported
apart), the mean rate and mean CV(ISI) over the seeds (CV over neurons with at least 3
spikes; the networks are chaotic, so compare statistics, never spikes), and the peak
resident memory of the simulating process (the peer script's VmHWM; for Brian2
standalone the binary's ``ru_maxrss``; for neurosim the example subprocess's, measured
through benchmarks/peers/_memwrap.py so that this process is not counted). Ratios
printed: run time / neurosim's (> 1: neurosim faster), and neurosim against Brian2 C++
standalone, the target of issue 15. JSON out (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

from peers import run_json_command, run_peer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PEER_CONFIGS = (
    # (label, peer, extra case fields)
    ("brian2 (cython runtime)", "brian2", {"mode": "runtime"}),
    ("brian2 (C++ standalone)", "brian2", {"mode": "standalone"}),
    ("nest", "nest", {}),
)


def neurosim_available() -> str | None:
    """``None`` if neurosim has networks, else the reason."""
    try:
        import neurosim
    except Exception as err:  # noqa: BLE001
        return f"neurosim does not import ({type(err).__name__}: {err})"
    if not hasattr(neurosim, "Network"):
        return "networks not available yet"
    return None


def example_flags(path: str) -> str:
    """The ``--help`` text of an example (to see which options it has)."""
    try:
        out = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True,
                             timeout=300)
        return out.stdout + out.stderr
    except (subprocess.SubprocessError, OSError):
        return ""


def run_neurosim(kind: str, n: int, duration: float, seed: int, timeout: float) -> dict | None:
    reason = neurosim_available()
    if reason:
        print(f"  neurosim: {reason}", flush=True)
        return None
    path = os.path.join(ROOT, "examples", f"{kind}.py")
    if not os.path.isfile(path):
        print(f"  neurosim: examples/{kind}.py not found", flush=True)
        return None
    helptext = example_flags(path)
    argv = [sys.executable, path, "--duration", str(duration), "--json"]
    if "--seed" in helptext:
        argv += ["--seed", str(seed)]
    for flag in ("--n-neurons", "--n_neurons", "--neurons"):
        if flag in helptext:
            argv += [flag, str(n)]
            break
    else:
        if n != 4000:
            print(f"  neurosim {kind}: skipped (examples/{kind}.py has no --n-neurons option)",
                  flush=True)
            return None
    res = run_json_command(argv, timeout=timeout, label=f"neurosim {kind}")
    if res is None:
        return None
    res.setdefault("spikes", None)
    return res


def one(kind: str, lib: str, n: int, duration: float, seed: int, repeats: int, python: dict,
        timeout: float) -> dict | None:
    if lib == "neurosim":
        return run_neurosim(kind, n, duration, seed, timeout)
    _, peer, extra = next(c for c in PEER_CONFIGS if c[0] == lib)
    case = {"case": kind, "n": n, "duration": duration, "dt": 1e-4, "seed": seed,
            "repeats": repeats, "threads": 1, **extra}
    script = "brian2_cases.py" if peer == "brian2" else "nest_cases.py"
    return run_peer(python[peer], script, case, timeout=timeout)


def summarise(kind: str, lib: str, n: int, results: list[dict]) -> dict:
    def mean_of(key):
        vals = [r[key] for r in results if r.get(key) is not None]
        return statistics.fmean(vals) if vals else None

    def median_of(key):
        vals = [r[key] for r in results if r.get(key) is not None]
        return statistics.median(vals) if vals else None

    # the simulating process: the peer's own report (Brian2 standalone: the binary), or
    # the subprocess's peak measured by peers._memwrap (neurosim's example)
    mem = [r.get("peak_rss_mib") or r.get("process_maxrss_mib") for r in results]
    mem = [m for m in mem if m is not None]
    return {"case": kind, "lib": lib, "n": n, "seeds": len(results),
            "run_s": median_of("run_s"), "compile_s": median_of("compile_s"),
            "setup_s": median_of("setup_s"), "rate_hz": mean_of("rate_hz"),
            "cv_isi": mean_of("cv_isi"), "peak_rss_mib": max(mem) if mem else None,
            "synapses": median_of("synapses"), "version": results[0].get("version"),
            "runs": results}


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict], duration: float, want_neurosim: bool = True) -> str:
    lines = []
    for kind in dict.fromkeys(r["case"] for r in rows):
        for n in dict.fromkeys(r["n"] for r in rows if r["case"] == kind):
            rs = [r for r in rows if r["case"] == kind and r["n"] == n]
            ref = next((r for r in rs if r["lib"] == "neurosim"), None)
            lines += ["", f"{kind.upper()}, {n} neurons, {duration:g} s biological, dt 0.1 ms, "
                      "one thread; last column: run time / neurosim's (> 1: neurosim faster)",
                      "| library | run (s) | compile (s) | set-up (s) | rate (Hz) | CV(ISI) | "
                      "peak RSS (MiB) | seeds | x neurosim |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in rs:
                ratio = (f"{r['run_s'] / ref['run_s']:.3g}x" if ref and ref.get("run_s")
                         and r.get("run_s") else "-")
                lines.append(f"| {r['lib']} | {fmt(r['run_s'], '.4f')} | "
                             f"{fmt(r['compile_s'], '.2f')} | {fmt(r['setup_s'], '.2f')} | "
                             f"{fmt(r['rate_hz'], '.2f')} | {fmt(r['cv_isi'], '.3f')} | "
                             f"{fmt(r['peak_rss_mib'], '.0f')} | {r['seeds']} | {ratio} |")
            if ref is None and want_neurosim:
                lines.append("| neurosim | networks not available yet | | | | | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="0.2 s, seed 0, 4000 neurons (default)")
    mode.add_argument("--full", action="store_true", help="1 s, seeds 0,1,2, 4000 neurons")
    p.add_argument("--cases", default="cuba,coba", help="cuba and/or coba (comma-separated)")
    p.add_argument("--n", default="4000",
                   help="network sizes, comma-separated (scale runs: 40000,400000)")
    p.add_argument("--duration", type=float, default=None, help="biological seconds")
    p.add_argument("--seeds", default=None, help="seeds, comma-separated")
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs per seed inside each peer (median)")
    p.add_argument("--libs", default="neurosim,brian2,nest",
                   help="which of neurosim, brian2, nest to run")
    p.add_argument("--brian2-python", default=None, metavar="PATH",
                   help="Python of the venv with Brian2 2.9 (numpy < 2.4)")
    p.add_argument("--nest-python", default=None, metavar="PATH",
                   help="Python of the venv with NEST (nest-simulator)")
    p.add_argument("--timeout", type=float, default=3600.0, help="s per subprocess")
    p.add_argument("--json", default=os.path.join("benchmarks", "results", "network.json"),
                   help="where to save the results")
    args = p.parse_args(argv)
    duration = args.duration or (1.0 if args.full else 0.2)
    seeds = ([int(s) for s in args.seeds.split(",")] if args.seeds
             else ([0, 1, 2] if args.full else [0]))
    sizes = [int(float(v)) for v in args.n.split(",")]
    kinds = [k.strip() for k in args.cases.split(",") if k.strip()]
    for k in kinds:
        if k not in ("cuba", "coba"):
            raise SystemExit(f"unknown case {k!r}: cuba, coba")
    wanted = {w.strip() for w in args.libs.split(",")}
    libs = (["neurosim"] if "neurosim" in wanted else []) + \
        [c[0] for c in PEER_CONFIGS if c[1] in wanted]
    python = {"brian2": args.brian2_python, "nest": args.nest_python}
    info = {"python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "duration": duration, "seeds": seeds,
            "sizes": sizes, "brian2_python": args.brian2_python,
            "nest_python": args.nest_python, "neurosim": neurosim_available() or "Network"}
    print(json.dumps(info, indent=1), flush=True)
    rows: list[dict] = []
    for kind in kinds:
        for n in sizes:
            for lib in libs:
                results = []
                for seed in seeds:
                    res = one(kind, lib, n, duration, seed, args.repeats, python, args.timeout)
                    if res is None:
                        break  # the reason is printed; other seeds would fail alike
                    results.append(res)
                    print(f"  {kind} n={n} seed={seed} {lib:<24} run {fmt(res.get('run_s'), '.4f')}"
                          f" s, compile {fmt(res.get('compile_s'), '.2f')} s, set-up "
                          f"{fmt(res.get('setup_s'), '.2f')} s, {fmt(res.get('rate_hz'), '.2f')}"
                          f" Hz, CV {fmt(res.get('cv_isi'), '.3f')}, peak "
                          f"{fmt(res.get('peak_rss_mib') or res.get('process_maxrss_mib'), '.0f')}"
                          " MiB", flush=True)
                if results:
                    rows.append(summarise(kind, lib, n, results))
            mine = next((r for r in rows if r["case"] == kind and r["n"] == n
                         and r["lib"] == "neurosim"), None)
            target = next((r for r in rows if r["case"] == kind and r["n"] == n
                           and r["lib"] == "brian2 (C++ standalone)"), None)
            if mine and target and mine["run_s"] and target["run_s"]:
                print(f"  {kind} n={n}: neurosim / Brian2 C++ standalone run time = "
                      f"{mine['run_s'] / target['run_s']:.2f} (target < 1)", flush=True)
    print(table(rows, duration, "neurosim" in libs))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"info": info, "rows": rows}, fh, indent=1)
    print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
