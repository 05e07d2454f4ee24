"""Side-by-side benchmarks of neurosim (engine and reference paths) and the installed peers.

    python benchmarks/run.py --quick          # a few minutes
    python benchmarks/run.py --full           # the figures in docs/performance.md
    python benchmarks/run.py --full --cases adex,lif_poisson \
        --brian2-python /work/peers/bin/python --nest-python /work/peers/bin/python

Cases (DESIGN.md section 7, issue 7):

(a) a feed-forward LIF population, N neurons, T steps, batch 1, simulation only
    (no gradients); neuron-steps per second. ``--full`` uses N = 1e3..1e6 with
    T = 1000, except T = 100 at N = 1e6 (the float32 input alone would be 4 GB).
(b) a training step 100 -> 256 LIF -> 10 LI, T = 100, batch 128: forward,
    backward and Adam; milliseconds per step and peak memory. A "floor" row runs
    the same Linear layers with a ReLU instead of the neurons: what every library
    pays for the GEMMs, the loss and Adam; the time above it is the neurons' share.
(c) the cost per neuron-step of neurosim's integrators (reference path) and of
    ``neurosim.fused.run`` (one call of the engine's kernels, grid spikes).
adex  (issue 13) N independent AdEx neurons (Brette & Gerstner 2005, neurosim's AdEx
    defaults), I = linspace(0.5, 1.5, N) nA constant, float64, no traces, dt = 0.1 ms;
    neurosim ``simulate(..., method=...)`` for euler, rk4 and adaptive (rtol 1e-6),
    against Brian2 (euler, rk4; Cython runtime and C++ standalone) and NEST
    ``aeif_psc_delta`` (GSL RKF45 inside each step: NEST's adaptive).
lif_poisson  (issue 13) N LIF neurons (tau_mem 20 ms, threshold 1, reset 0, t_ref 2 ms)
    with an exponential synapse (tau_syn 5 ms) driven by 10 independent Poisson trains
    of 10 Hz per neuron, each spike adding 1.5 to the synaptic variable (about 10 Hz
    out); neurosim ``method="exact"`` with precise spikes and with ``precise=False``,
    against Brian2 ``exact`` and NEST ``iaf_psc_exp_ps`` / ``iaf_psc_exp``. neurosim gets
    the input as jumps: ``LIF(tau_syn=5 ms)`` has ``input_mode="jump"`` into ``i``, and
    the input tensor holds 1.5 x (number of the 10 trains that spike in the step), the
    count drawn Binomial(10, 10 Hz x dt) per step and neuron, as Brian2's PoissonInput
    draws it; the peers draw their own trains (statistically the same input).

The peers Brian2 and NEST run from their own Python (``--brian2-python PATH``,
``--nest-python PATH``; docs/performance.md says how to build that venv), one
subprocess per configuration (benchmarks/peers/). For neurosim, the first call of each
configuration is reported as ``first_call_s`` and ``compile_s`` (first call minus the
median run), then the median of the repeats as ``run_s``; a configuration whose first
call takes longer than ``--slow-limit`` seconds is not repeated (its one cold run is
reported). Ratios printed are peer run time / neurosim run time (> 1: neurosim faster).

Timings run in this one process, library after library, with a warm-up run
first; each figure is the median of several repeats. Peak memory of (b) is
measured in a fresh subprocess per library (see :func:`measure_step_memory`).
Results are printed as a table and saved as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from peers import run_peer

DT = 1e-3
TAU = 20e-3
BETA = math.exp(-DT / TAU)
PEERS = ("snntorch", "norse", "sinabs", "spikingjelly", "brian2")


def available() -> dict[str, str]:
    """Installed libraries and their versions (a message for those that do not import)."""
    out = {}
    for name in ("neurosim",) + PEERS:
        try:
            mod = importlib.import_module(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception as err:  # noqa: BLE001 - any import failure means "skip"
            out[name] = f"unavailable: {type(err).__name__}: {err}"[:120]
    return out


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after one warm-up run."""
    return interleaved_medians({"fn": fn}, repeats)["fn"]


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each function, after a warm-up run of each.

    The repeats are interleaved (one run of every library per round), so that a
    change of load on a shared machine affects all libraries alike, and each round runs
    them in a new (seeded) order: a call right after a torch-based peer finds its
    OpenMP threads still spinning, and no library should always be the one that does.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for k in range(repeats):
        random.Random(k).shuffle(order)
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- case (a): simulation of a LIF population -----------------------------------------------
#: case (a)'s LIF: tau_mem 10 ms at dt = 1 ms (the issue-14 setting), subtractive reset
TAU_A = 10e-3
BETA_A = math.exp(-DT / TAU_A)
#: the two drives of case (a): constant per neuron, 1 + spread * uniform; about 40 Hz
#: (a realistic cortical rate) and about 300 Hz (a stress case for the spike bookkeeping)
DRIVES_A = {"40Hz": 0.2, "300Hz": 6.0}


def population(lib: str, u: torch.Tensor) -> Callable[[], object] | None:
    """A closure simulating ``u`` ([T, 1, N] currents) with a LIF population of ``lib``.

    ``neurosim`` is the public call, ``neurosim.simulate(..., record=None)``, with its
    default outputs: spike events, read back as time-sorted ``spike_index`` /
    ``spike_time`` (what a user's analysis touches first). ``neurosim-fused`` is the
    training kernel alone (``neurosim.fused.run``: one engine kernel call writing a dense
    raster) and ``neurosim-engine`` the simulation kernel alone (``neurosim.engine.run``:
    unsorted events, no ``Result``): the ceilings of the public call.
    """
    T, _, N = u.shape
    if lib.startswith("neurosim"):
        import neurosim as ns

        model = ns.LIF(tau_mem=TAU_A, reset="subtract")
        method = ns.ExactExponential(precise=False)
        if lib == "neurosim-engine":
            from neurosim import engine

            # the compiled engine alone: the kernel and its event buffers, unsorted, no Result
            step = ns.discretise(model, DT, method)
            state = model.initial_state(u.shape[1:], dtype=u.dtype)
            return lambda: engine.run(step, u, state).events
        if lib.startswith("neurosim-fused"):
            from neurosim import fused

            # "-uint8": the 0/1 raster as uint8, a quarter of the output memory and bandwidth
            spike_dtype = torch.uint8 if lib.endswith("uint8") else None
            return lambda: fused.run(model, u, DT, method, spike_dtype=spike_dtype).spikes
        backend = "reference" if lib == "neurosim-reference" else "auto"

        def run_public():
            res = ns.simulate(model, u, DT, method, record=None, backend=backend)
            return res.spike_index, res.spike_time

        return run_public
    if lib == "snntorch":
        import snntorch as snn

        def run_snntorch():
            lif = snn.Leaky(beta=BETA_A, reset_mechanism="subtract")
            mem = torch.zeros(1, N)
            out = []
            for t in range(T):
                spk, mem = lif(u[t] * (1 - BETA_A), mem)
                out.append(spk)
            return torch.stack(out)

        return run_snntorch
    if lib == "norse":
        from norse.torch import LIFBoxCell, LIFBoxParameters

        cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / TAU_A)), dt=DT)

        def run_norse():
            state = None
            out = []
            for t in range(T):
                z, state = cell(u[t], state)
                out.append(z)
            return torch.stack(out)

        return run_norse
    if lib == "sinabs":
        import sinabs.layers as sl

        layer = sl.LIF(tau_mem=TAU_A / DT, norm_input=True)
        ub = u.permute(1, 0, 2)  # sinabs wants [batch, time, ...]

        def run_sinabs():
            layer.reset_states()
            return layer(ub)

        return run_sinabs
    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, neuron

        node = neuron.LIFNode(tau=TAU_A / DT, step_mode="m", v_reset=None)

        def run_spikingjelly():
            functional.reset_net(node)
            return node(u)

        return run_spikingjelly
    return None


def case_a(libs: list[str], sizes: list[tuple[int, int]], repeats: int) -> list[dict]:
    """LIF populations through each library's public call, at two firing rates."""
    import neurosim as ns

    rows = []
    for drive_name, spread in DRIVES_A.items():
        for N, T in sizes:
            gen = torch.Generator().manual_seed(0)
            level = 1.0 + spread * torch.rand(N, generator=gen)
            u = level.expand(T, 1, N).contiguous()  # every library reads a [T, 1, N] tensor
            with torch.no_grad():
                probe = ns.simulate(ns.LIF(tau_mem=TAU_A, reset="subtract"), u, DT,
                                    ns.ExactExponential(precise=False), record=None)
            rate = probe.n_spikes / (N * T * DT)
            fns = {}
            for lib in libs:
                if lib == "neurosim-reference" and N * T > 2e8:
                    continue  # minutes per run; its cost per step is in case (c)
                fn = population(lib, u)
                if fn is not None:
                    fns[lib] = fn
            with torch.no_grad():
                secs = interleaved_medians(fns, repeats)
            for lib, sec in secs.items():
                rows.append({"case": "a", "drive": drive_name, "rate_hz": rate, "lib": lib,
                             "N": N, "T": T, "seconds": sec,
                             "neuron_steps_per_s": N * T / sec})
                print(f"  (a) {drive_name:>5} ({rate:5.1f} Hz) N={N:>8} T={T:>5} {lib:<22} "
                      f"{N * T / sec:10.3e} neuron-steps/s", flush=True)
            for kernel in ("neurosim-engine", "neurosim-fused"):
                if "neurosim" in secs and kernel in secs:
                    over = secs["neurosim"] / secs[kernel] - 1.0
                    print(f"      public call over the kernel (simulate vs {kernel}): "
                          f"{100 * over:+.0f} %", flush=True)
            peers = [secs[p] for p in secs if not p.startswith("neurosim")]
            if "neurosim" in secs and peers:
                print(f"      neurosim.simulate vs the best peer: "
                      f"{min(peers) / secs['neurosim']:.2f}x", flush=True)
            del fns
            del u
    return rows


# -- case (b): a training step ------------------------------------------------------------
N_IN, N_HID, N_OUT, T_B, BATCH = 100, 256, 10, 100, 128


#: case (b) without spiking neurons: the same Linear layers with a ReLU between them,
#: the floor that every library's training step pays (GEMMs, loss, Adam)
FLOOR = "floor (Linear only)"


def make_net(lib: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``x [T, B, 100] -> readout [T, B, 10]`` as a torch Module of ``lib``."""
    nn = torch.nn
    torch.manual_seed(0)
    if lib == FLOOR:
        return nn.Sequential(nn.Linear(N_IN, N_HID), nn.ReLU(), nn.Linear(N_HID, N_OUT))
    if lib == "neurosim-fused" or lib == "neurosim-reference":
        from neurosim.nn import LIFLayer, LILayer

        backend = "fused" if lib == "neurosim-fused" else "reference"

        class Net(nn.Module):
            """The user-facing training modules (neurosim.nn), on either backend."""

            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
                self.lif = LIFLayer(tau_mem=TAU, reset="subtract", dt=DT, method="exact",
                                    backend=backend)
                self.li = LILayer(tau_mem=TAU, dt=DT, method="exact", backend=backend)

            def forward(self, x):
                spk, _ = self.lif(self.fc1(x))
                v, _ = self.li(self.fc2(spk))
                return v

        return Net()
    if lib == "snntorch":
        import snntorch as snn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
                self.lif = snn.Leaky(beta=BETA)
                self.li = snn.Leaky(beta=BETA, reset_mechanism="none")

            def forward(self, x):
                m1 = torch.zeros(x.shape[1], N_HID)
                m2 = torch.zeros(x.shape[1], N_OUT)
                out = []
                cur = self.fc1(x)
                for t in range(x.shape[0]):
                    s, m1 = self.lif(cur[t], m1)
                    _, m2 = self.li(self.fc2(s), m2)
                    out.append(m2)
                return torch.stack(out)

        return Net()
    if lib == "norse":
        from norse.torch import LIBoxCell, LIBoxParameters, LIFBoxCell, LIFBoxParameters

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
                self.lif = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / TAU)), dt=DT)
                self.li = LIBoxCell(LIBoxParameters(tau_mem_inv=torch.tensor(1 / TAU)), dt=DT)

            def forward(self, x):
                s1 = s2 = None
                out = []
                cur = self.fc1(x)
                for t in range(x.shape[0]):
                    z, s1 = self.lif(cur[t], s1)
                    v, s2 = self.li(self.fc2(z), s2)
                    out.append(v)
                return torch.stack(out)

        return Net()
    if lib == "sinabs":
        import sinabs.layers as sl

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
                self.lif = sl.LIF(tau_mem=TAU / DT, norm_input=True)
                self.li = sl.ExpLeak(tau_mem=TAU / DT)

            def forward(self, x):
                self.lif.reset_states()
                self.li.reset_states()
                xb = x.transpose(0, 1)  # [B, T, ...]
                return self.li(self.fc2(self.lif(self.fc1(xb)))).transpose(0, 1)

        return Net()
    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, neuron

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(N_IN, N_HID), nn.Linear(N_HID, N_OUT)
                self.lif = neuron.LIFNode(tau=TAU / DT, step_mode="m")
                # a LIF that never fires is spikingjelly's leaky integrator readout
                self.li = neuron.LIFNode(tau=TAU / DT, v_threshold=float("inf"),
                                         step_mode="m", store_v_seq=True)

            def forward(self, x):
                functional.reset_net(self)
                self.li(self.fc2(self.lif(self.fc1(x))))
                return self.li.v_seq

        return Net()
    return None


def training_step(lib: str, batch: int = BATCH):
    net = make_net(lib)
    if net is None:
        return None
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(T_B, batch, N_IN, generator=gen) < 0.1).float()
    y = torch.randint(0, N_OUT, (batch,), generator=gen)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        out = net(x)
        loss = torch.nn.functional.cross_entropy(out.mean(0), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def measure_step_memory(lib: str) -> float:
    """Peak resident memory (MiB) of one training step above the memory before it.

    Run in a fresh process: a step at batch 2 first (lazy initialisation: kernel
    caches, thread pools), then the real model and data; the kernel's peak-RSS
    counter (``VmHWM``) is reset to the current RSS (``/proc/self/clear_refs``) and
    read after one full step. ``VmHWM`` counts torch's allocations, unlike tracemalloc;
    ``ru_maxrss`` would not do here, as Linux carries it over from the parent process.
    """
    training_step(lib, batch=2)()
    step = training_step(lib)
    before = _proc_status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    step()
    return (_proc_status_kib("VmHWM") - before) / 1024


def peak_memory_mib(lib: str) -> float | None:
    """:func:`measure_step_memory` in a fresh subprocess (Linux only)."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import sys; sys.path.insert(0, {here!r}); import run as b; "
            f"print(b.measure_step_memory({lib!r}))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=900, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as err:
        print(f"  (b) memory of {lib} failed: {err}", flush=True)
        return None


def case_b(libs: list[str], repeats: int, memory: bool) -> list[dict]:
    steps = {lib: training_step(lib) for lib in [*libs, FLOOR] if not lib.endswith("uint8")}
    secs = interleaved_medians({k: v for k, v in steps.items() if v is not None}, repeats)
    rows = []
    for lib, sec in secs.items():
        mem = peak_memory_mib(lib) if memory else None
        rows.append({"case": "b", "lib": lib, "seconds": sec, "ms_per_step": 1e3 * sec,
                     "peak_mib": mem})
        print(f"  (b) {lib:<20} {1e3 * sec:8.1f} ms/step  peak +{mem} MiB", flush=True)
    return rows


# -- case (c): integrators --------------------------------------------------------------------
def case_c(N: int, T: int, repeats: int) -> list[dict]:
    import neurosim as ns
    from neurosim import fused

    model = ns.LIF(tau_mem=TAU, reset="subtract")
    u = torch.rand(T, N, generator=torch.Generator().manual_seed(2)) * 2.5
    cases = {
        "reference euler": lambda: ns.simulate(model, u, DT, "euler", record=None,
                                               backend="reference"),
        "reference exact (grid spikes)": lambda: ns.simulate(
            model, u, DT, "exact", precise=False, record=None, backend="reference"),
        "reference exact (precise spikes)": lambda: ns.simulate(model, u, DT, "exact",
                                                                record=None),
        "reference rk4": lambda: ns.simulate(model, u, DT, "rk4", record=None),
        "reference adaptive (dopri5)": lambda: ns.simulate(model, u[: max(T // 10, 1)], DT,
                                                           "adaptive", record=None),
        "fused euler": lambda: fused.run(model, u, DT, "euler"),
        "fused exact (grid spikes)": lambda: fused.run(model, u, DT, "exact", precise=False),
    }
    rows = []
    for name, fn in cases.items():
        steps = (max(T // 10, 1) if "adaptive" in name else T) * N
        with torch.no_grad():
            sec = median_time(fn, repeats)
        rows.append({"case": "c", "method": name, "N": N, "T": T,
                     "ns_per_neuron_step": 1e9 * sec / steps})
        print(f"  (c) {name:<34} {1e9 * sec / steps:10.2f} ns per neuron-step", flush=True)
    return rows


# -- cases adex and lif_poisson: neurosim's public call against Brian2 and NEST --------------
#: where the peers' Python lives, set from --brian2-python / --nest-python in main()
PEER_PYTHON: dict[str, str | None] = {"brian2": None, "nest": None}
PEER_TIMEOUT = 1800.0
#: a neurosim configuration whose first call takes longer than this (s) is not repeated
SLOW_LIMIT = 120.0
DT_NEURO = 1e-4


def count_spikes(res) -> int:
    """Total spike count of a neurosim Result, whatever it keeps (counts, raster or events)."""
    for attr in ("spike_count", "spike_counts"):
        fn = getattr(res, attr, None)
        if callable(fn):
            try:
                return int(torch.as_tensor(fn()).sum())
            except Exception:  # noqa: BLE001 - try the next representation
                pass
    if getattr(res, "spikes", None) is not None:
        return int(res.spikes.sum())
    return len(res.spike_index)


def time_public_call(fn: Callable[[], object], repeats: int, n: int,
                     duration: float) -> dict:
    """Time ``fn`` (a ``neurosim.simulate`` call): the first call alone, then the median
    of ``repeats`` more, unless the first took longer than :data:`SLOW_LIMIT`."""
    t0 = time.perf_counter()
    res = fn()
    first = time.perf_counter() - t0
    out: dict = {"first_call_s": first}
    if first > SLOW_LIMIT:
        out.update(run_s=first, run_s_all=[first], compile_s=None,
                   note=f"one cold run (first call over --slow-limit {SLOW_LIMIT:.0f} s)")
    else:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = fn()
            times.append(time.perf_counter() - t0)
        run = statistics.median(times)
        out.update(run_s=run, run_s_all=times, compile_s=max(first - run, 0.0))
    spikes = count_spikes(res)
    out.update(spikes=spikes, rate_hz=spikes / (n * duration))
    return out


def peer_row(case_name: str, peer: str, case: dict, label: str, compare_to: str,
             extra: dict) -> dict | None:
    script = "brian2_cases.py" if peer == "brian2" else "nest_cases.py"
    res = run_peer(PEER_PYTHON[peer], script, case, timeout=PEER_TIMEOUT)
    if res is None:
        return None
    row = {"case": case_name, "lib": label, "peer": peer, "version": res.get("version"),
           "compare_to": compare_to, **extra}
    for key in ("run_s", "run_s_all", "compile_s", "setup_s", "loop_s", "run_wall_s",
                "spikes", "rate_hz", "method", "model", "peak_rss_mib"):
        if key in res:
            row[key] = res[key]
    return row


def print_row(row: dict, ref: dict | None) -> None:
    comp = row.get("compile_s")
    comp = "" if comp is None else f", compile {comp:.2f} s"
    setup = row.get("setup_s")
    setup = "" if setup is None else f", setup {setup:.2f} s"
    ratio = ""
    if ref is not None and ref is not row and ref.get("run_s"):
        ratio = f"  peer/neurosim {row['run_s'] / ref['run_s']:.3g}x ({ref['lib']})"
    note = f"  [{row['note']}]" if row.get("note") else ""
    print(f"  ({row['case']}) N={row['N']:>6} {row['lib']:<34} run {row['run_s']:9.4f} s"
          f"{comp}{setup}, {row['spikes']} spikes, {row['rate_hz']:.2f} Hz{ratio}{note}",
          flush=True)


def case_adex(sizes: list[int], duration: float, repeats: int) -> list[dict]:
    import neurosim as ns

    rows: list[dict] = []
    T = int(round(duration / DT_NEURO))
    model = ns.AdEx()  # Brette & Gerstner (2005): the defaults
    for N in sizes:
        current = torch.linspace(500.0, 1500.0, N, dtype=torch.float64)  # pA
        u = current.expand(T, N)
        common = {"N": N, "T": T, "dt": DT_NEURO, "duration": duration}
        for method in ("euler", "rk4", "adaptive"):
            kw = {"rtol": 1e-6} if method == "adaptive" else {}
            label = f"neurosim {method}" + (" (rtol 1e-6)" if kw else "")

            def call(method=method, kw=kw, u=u):
                with torch.no_grad():
                    return ns.simulate(model, u, DT_NEURO, method, record=None, **kw)

            mine = {"case": "adex", "lib": label, "method": method, **common,
                    **time_public_call(call, repeats, N, duration)}
            rows.append(mine)
            print_row(mine, None)
            peer_case = {"case": "adex_population", "n": N, "dt": DT_NEURO,
                         "duration": duration, "repeats": repeats}
            if method in ("euler", "rk4"):
                for mode, name in (("runtime", "cython runtime"), ("standalone", "C++ standalone")):
                    row = peer_row("adex", "brian2", {**peer_case, "method": method, "mode": mode},
                                   f"brian2 {method} ({name})", label, common)
                    if row:
                        rows.append(row)
                        print_row(row, mine)
            else:
                row = peer_row("adex", "nest", {**peer_case, "model": "aeif_psc_delta"},
                               "nest aeif_psc_delta (RKF45)", label, common)
                if row:
                    rows.append(row)
                    print_row(row, mine)
                rk4 = next(r for r in rows if r["case"] == "adex" and r["N"] == N
                           and r["lib"] == "neurosim rk4")
                # the same ratio from rk4 and adaptive runs that alternate: the runs above
                # are minutes apart, and this machine's speed drifts by tens of percent
                with torch.no_grad():
                    pair = interleaved_medians(
                        {m: (lambda m=m, u=u: ns.simulate(model, u, DT_NEURO, m, record=None,
                                                     **({"rtol": 1e-6} if m == "adaptive"
                                                        else {})))
                         for m in ("rk4", "adaptive")}, max(repeats, 3))
                mine["adaptive_over_rk4_interleaved"] = pair["adaptive"] / pair["rk4"]
                print(f"  (adex) N={N:>6} neurosim adaptive / rk4 = "
                      f"{mine['run_s'] / rk4['run_s']:.2f}x; alternating runs: "
                      f"{pair['adaptive']:.4f} s / {pair['rk4']:.4f} s = "
                      f"{mine['adaptive_over_rk4_interleaved']:.2f}x (target <= 3)", flush=True)
        del u
    return rows


#: lif_poisson's drive: 10 Poisson trains of 10 Hz per neuron, weight 1.5 (about 10 Hz out)
POISSON = {"n_inputs": 10, "rate_in": 10.0, "weight": 1.5, "tau_mem": 20e-3,
           "tau_syn": 5e-3, "t_ref": 2e-3}


def poisson_jumps(T: int, N: int, seed: int = 0) -> torch.Tensor:
    """[T, N] float64 jumps into the synaptic variable: weight x Binomial(n_inputs, rate dt)."""
    rng = np.random.default_rng(seed)
    out = np.empty((T, N), dtype=np.float64)
    rows = max(1, 2**22 // N)  # in chunks: no [T, N] int64 array beside the result
    for t0 in range(0, T, rows):
        chunk = rng.binomial(POISSON["n_inputs"], POISSON["rate_in"] * DT_NEURO,
                             size=(min(rows, T - t0), N))
        np.multiply(chunk, POISSON["weight"], out=out[t0:t0 + chunk.shape[0]])
    return torch.from_numpy(out)


def case_lif_poisson(sizes: list[int], duration: float, repeats: int) -> list[dict]:
    import neurosim as ns

    rows: list[dict] = []
    T = int(round(duration / DT_NEURO))
    model = ns.LIF(tau_mem=POISSON["tau_mem"], tau_syn=POISSON["tau_syn"],
                   t_ref=POISSON["t_ref"], v_th=1.0, v_reset=0.0)  # input_mode "jump" into i
    for N in sizes:
        x = poisson_jumps(T, N)
        common = {"N": N, "T": T, "dt": DT_NEURO, "duration": duration}
        mine = {}
        for precise in (True, False):
            label = "neurosim exact" + (" (precise spikes)" if precise else ", precise=False")

            def call(precise=precise, x=x):
                with torch.no_grad():
                    return ns.simulate(model, x, DT_NEURO, "exact", precise=precise,
                                       record=None)

            row = {"case": "lif_poisson", "lib": label, "method": "exact", "precise": precise,
                   **common, **time_public_call(call, repeats, N, duration)}
            rows.append(row)
            print_row(row, None)
            mine[precise] = row
        print(f"  (lif_poisson) N={N:>6} precise / grid-only = "
              f"{mine[True]['run_s'] / mine[False]['run_s']:.2f}x (target <= 2)", flush=True)
        peer_case = {"case": "lif_poisson", "n": N, "dt": DT_NEURO, "duration": duration,
                     "repeats": repeats, **POISSON}
        for mode, name in (("runtime", "cython runtime"), ("standalone", "C++ standalone")):
            row = peer_row("lif_poisson", "brian2", {**peer_case, "method": "exact", "mode": mode},
                           f"brian2 exact ({name})", mine[False]["lib"], common)
            if row:
                rows.append(row)
                print_row(row, mine[False])
        for model_name, precise in (("iaf_psc_exp_ps", True), ("iaf_psc_exp", False)):
            row = peer_row("lif_poisson", "nest", {**peer_case, "model": model_name},
                           f"nest {model_name}", mine[precise]["lib"], common)
            if row:
                rows.append(row)
                print_row(row, mine[precise])
        del x
    return rows


# -- report -------------------------------------------------------------------------------------
def table(rows: list[dict]) -> str:
    lines = []
    peers = set(PEERS)
    for drive in DRIVES_A:
        a = [r for r in rows if r["case"] == "a" and r.get("drive") == drive]
        if not a:
            continue
        rate = statistics.mean(r["rate_hz"] for r in a)
        lines.append(f"(a) LIF population at {rate:.0f} Hz, batch 1: neuron-steps/s "
                     "(x best peer)")
        sizes = sorted({(r["N"], r["T"]) for r in a})
        libs = list(dict.fromkeys(r["lib"] for r in a))
        lines.append("| library | " + " | ".join(f"N={n:.0e}, T={t}" for n, t in sizes) + " |")
        lines.append("|---" * (len(sizes) + 1) + "|")
        for lib in libs:
            cells = []
            for n, _t in sizes:
                mine = [r for r in a if r["lib"] == lib and r["N"] == n]
                best = max((r["neuron_steps_per_s"] for r in a
                            if r["lib"] in peers and r["N"] == n), default=None)
                if not mine:
                    cells.append("-")
                    continue
                v = mine[0]["neuron_steps_per_s"]
                ratio = f" ({v / best:.1f}x)" if best else ""
                cells.append(f"{v:.2e}{ratio}")
            lines.append(f"| {lib} | " + " | ".join(cells) + " |")
        lines.append("")
    b = [r for r in rows if r["case"] == "b"]
    if b:
        best = min((r["ms_per_step"] for r in b if r["lib"] in peers), default=None)
        floor = next((r["ms_per_step"] for r in b if r["lib"] == FLOOR), None)
        lines.append("")
        lines.append("(b) training step 100-256 LIF-10 LI, T=100, batch 128 (fwd+bwd+Adam); "
                     "'above floor': the step minus the same network without neurons")
        lines.append("| library | ms/step | speed-up vs best peer | above floor (ms) | "
                     "above floor, x best peer | peak memory (MiB) |")
        lines.append("|---|---|---|---|---|---|")
        best_above = None if floor is None or best is None else best - floor
        for r in b:
            ms = r["ms_per_step"]
            sp = f"{best / ms:.1f}x" if best else "-"
            above = "-" if floor is None or r["lib"] == FLOOR else f"{ms - floor:.1f}"
            x_above = ("-" if above == "-" or best_above is None or ms <= floor
                       else f"{best_above / (ms - floor):.1f}x")
            mem = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
            lines.append(f"| {r['lib']} | {ms:.1f} | {sp} | {above} | {x_above} | {mem} |")
    c = [r for r in rows if r["case"] == "c"]
    if c:
        lines.append("")
        lines.append(f"(c) cost per neuron-step, LIF, N={c[0]['N']}, float32")
        lines.append("| method | ns per neuron-step |")
        lines.append("|---|---|")
        for r in c:
            lines.append(f"| {r['method']} | {r['ns_per_neuron_step']:.2f} |")
    titles = {
        "adex": "(adex) AdEx population, float64, no traces, dt = 0.1 ms, I = 0.5..1.5 nA",
        "lif_poisson": "(lif_poisson) LIF + exponential synapse, Poisson input (10 x 10 Hz, "
                       "w = 1.5), t_ref = 2 ms, dt = 0.1 ms, float64",
    }
    for name, title in titles.items():
        rs = [r for r in rows if r["case"] == name]
        if not rs:
            continue
        lines += ["", title + "; last column: peer run time / neurosim run time "
                  "(> 1: neurosim faster)",
                  "| N | library | run (s) | compile (s) | setup (s) | spikes | rate (Hz) | "
                  "peer / neurosim |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rs:
            ref = next((q for q in rs if q["lib"] == r.get("compare_to") and q["N"] == r["N"]),
                       None)
            ratio = f"{r['run_s'] / ref['run_s']:.3g}x vs {ref['lib']}" if ref else "-"
            comp = "-" if r.get("compile_s") is None else f"{r['compile_s']:.2f}"
            setup = "-" if r.get("setup_s") is None else f"{r['setup_s']:.2f}"
            note = " (one cold run)" if r.get("note") else ""
            lines.append(f"| {r['N']} | {r['lib']} | {r['run_s']:.4f}{note} | {comp} | {setup} "
                         f"| {r['spikes']} | {r['rate_hz']:.2f} | {ratio} |")
    return "\n".join(lines)


#: the named cases of --cases (single letters select the lettered cases a, b, c)
NAMED_CASES = ("adex", "lif_poisson")


def parse_cases(text: str) -> list[str]:
    """``"abc"`` -> a, b, c; ``"a,adex,lif_poisson"`` -> a, adex, lif_poisson."""
    out: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if token in NAMED_CASES:
            out.append(token)
        elif set(token) <= set("abc"):
            out.extend(token)
        else:
            raise SystemExit(f"unknown case {token!r}: use letters of 'abc' and/or "
                             f"{', '.join(NAMED_CASES)}")
    return list(dict.fromkeys(out))


def main(argv: list[str] | None = None) -> None:
    global PEER_TIMEOUT, SLOW_LIMIT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes (default)")
    mode.add_argument("--full", action="store_true", help="the sizes of docs/performance.md")
    parser.add_argument("--cases", default="abc",
                        help="which cases to run: letters of 'abc' and/or names, comma-"
                             "separated, e.g. 'ab' or 'a,adex,lif_poisson' (default 'abc')")
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "latest.json"),
                        help="where to save the results")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--brian2-python", default=None, metavar="PATH",
                        help="Python of a venv with Brian2 2.9 (numpy < 2.4) for adex and "
                             "lif_poisson; see docs/performance.md")
    parser.add_argument("--nest-python", default=None, metavar="PATH",
                        help="Python of a venv with NEST (nest-simulator) for adex and "
                             "lif_poisson")
    parser.add_argument("--n", default=None,
                        help="neuron counts for adex and lif_poisson, comma-separated "
                             "(default: 1000 with --quick, 1000,10000 with --full)")
    parser.add_argument("--duration", type=float, default=None,
                        help="biological seconds for adex and lif_poisson (default: 0.1 "
                             "with --quick, 1 with --full)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats of adex and lif_poisson (default 3)")
    parser.add_argument("--slow-limit", type=float, default=SLOW_LIMIT,
                        help="a neurosim configuration whose first call takes longer (s) is "
                             f"not repeated (default {SLOW_LIMIT:.0f})")
    parser.add_argument("--peer-timeout", type=float, default=PEER_TIMEOUT,
                        help=f"seconds per peer subprocess (default {PEER_TIMEOUT:.0f})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice; the peers run one "
                             "thread)")
    args = parser.parse_args(argv)
    full = args.full
    cases = parse_cases(args.cases)
    if args.threads:
        torch.set_num_threads(args.threads)
    PEER_PYTHON["brian2"] = args.brian2_python
    PEER_PYTHON["nest"] = args.nest_python
    PEER_TIMEOUT, SLOW_LIMIT = args.peer_timeout, args.slow_limit
    versions = available()
    libs = ["neurosim", "neurosim-engine", "neurosim-fused", "neurosim-fused-uint8",
            "neurosim-reference"]
    for peer in PEERS:
        if versions[peer].startswith("unavailable"):
            print(f"skipping {peer}: {versions[peer]}")
        elif peer == "brian2":
            print("skipping brian2 in cases a-c: its C++ code generation does not share the "
                  "torch time-major API (it runs in adex and lif_poisson, --brian2-python)")
        else:
            libs.append(peer)
    info = {"machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "versions": versions, "load_average": os.getloadavg(),
            "mode": "full" if full else "quick", "cases": cases,
            "brian2_python": args.brian2_python, "nest_python": args.nest_python}
    print(json.dumps(info, indent=1))
    rows: list[dict] = []
    if "a" in cases:
        sizes = ([(1000, 1000), (10_000, 1000), (100_000, 1000), (1_000_000, 100)] if full
                 else [(1000, 200), (10_000, 200), (100_000, 200)])
        rows += case_a(libs, sizes, repeats=5 if full else 3)
    if "b" in cases:
        rows += case_b(libs, repeats=7 if full else 3, memory=not args.no_memory)
    if "c" in cases:
        rows += case_c(1000, 1000 if full else 200, repeats=3)
    ns_sizes = ([int(float(v)) for v in args.n.split(",")] if args.n
                else ([1000, 10_000] if full else [1000]))
    duration = args.duration or (1.0 if full else 0.1)
    repeats = args.repeats or 3
    if "adex" in cases:
        rows += case_adex(ns_sizes, duration, repeats)
    if "lif_poisson" in cases:
        rows += case_lif_poisson(ns_sizes, duration, repeats)
    print()
    print(table(rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"info": info, "rows": rows}, fh, indent=1)
    print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
