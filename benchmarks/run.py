"""Side-by-side benchmarks of neurosim (fused and reference paths) and the installed peers.

    python benchmarks/run.py --quick          # a few minutes
    python benchmarks/run.py --full           # the figures in docs/performance.md

Cases (DESIGN.md section 7, issue 7):

(a) a feed-forward LIF population, N neurons, T steps, batch 1, simulation only
    (no gradients); neuron-steps per second. ``--full`` uses N = 1e3..1e6 with
    T = 1000, except T = 100 at N = 1e6 (the float32 input alone would be 4 GB).
(b) a training step 100 -> 256 LIF -> 10 LI, T = 100, batch 128: forward,
    backward and Adam; milliseconds per step and peak memory. A "floor" row runs
    the same Linear layers with a ReLU instead of the neurons: what every library
    pays for the GEMMs, the loss and Adam; the time above it is the neurons' share.
(c) the cost per neuron-step of neurosim's integrators (reference path) and of
    the fused kernels.

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
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

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
    change of load on a shared machine affects all libraries alike.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- case (a): simulation of a LIF population -----------------------------------------------
def population(lib: str, u: torch.Tensor) -> Callable[[], object] | None:
    """A closure simulating ``u`` ([T, 1, N] currents) with a LIF population of ``lib``."""
    T, _, N = u.shape
    if lib.startswith("neurosim"):
        import neurosim as ns

        model = ns.LIF(tau_mem=TAU, reset="subtract")
        method = ns.ExactExponential(precise=False)
        if lib.startswith("neurosim-fused"):
            from neurosim import fused

            # "-uint8": the 0/1 raster as uint8, a quarter of the output memory and bandwidth
            spike_dtype = torch.uint8 if lib.endswith("uint8") else None
            return lambda: fused.run(model, u, DT, method, spike_dtype=spike_dtype).spikes
        return lambda: ns.simulate(model, u, DT, method, record=None,
                                   backend="reference").spikes
    if lib == "snntorch":
        import snntorch as snn

        def run_snntorch():
            lif = snn.Leaky(beta=BETA)
            mem = torch.zeros(1, N)
            out = []
            for t in range(T):
                spk, mem = lif(u[t], mem)
                out.append(spk)
            return torch.stack(out)

        return run_snntorch
    if lib == "norse":
        from norse.torch import LIFBoxCell, LIFBoxParameters

        cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / TAU)), dt=DT)

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

        layer = sl.LIF(tau_mem=TAU / DT, norm_input=True)
        ub = u.permute(1, 0, 2)  # sinabs wants [batch, time, ...]

        def run_sinabs():
            layer.reset_states()
            return layer(ub)

        return run_sinabs
    if lib == "spikingjelly":
        from spikingjelly.activation_based import functional, neuron

        node = neuron.LIFNode(tau=TAU / DT, step_mode="m")

        def run_spikingjelly():
            functional.reset_net(node)
            return node(u)

        return run_spikingjelly
    return None


def case_a(libs: list[str], sizes: list[tuple[int, int]], repeats: int) -> list[dict]:
    rows = []
    for N, T in sizes:
        gen = torch.Generator().manual_seed(0)
        u = torch.rand(T, 1, N, generator=gen) * 2.5 / 20  # ~ threshold crossing drive
        u.mul_(20)  # values up to 2.5: a fraction of the neurons fire
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
            rows.append({"case": "a", "lib": lib, "N": N, "T": T, "seconds": sec,
                         "neuron_steps_per_s": N * T / sec})
            print(f"  (a) N={N:>8} T={T:>5} {lib:<20} {N * T / sec:10.3e} neuron-steps/s",
                  flush=True)
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


# -- report -------------------------------------------------------------------------------------
def table(rows: list[dict]) -> str:
    lines = []
    peers = set(PEERS)
    a = [r for r in rows if r["case"] == "a"]
    if a:
        lines.append("(a) LIF population, batch 1, simulation only: neuron-steps/s "
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes (default)")
    mode.add_argument("--full", action="store_true", help="the sizes of docs/performance.md")
    parser.add_argument("--cases", default="abc", help="which cases to run, e.g. 'ab'")
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "latest.json"),
                        help="where to save the results")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    args = parser.parse_args(argv)
    full = args.full
    versions = available()
    libs = ["neurosim-fused", "neurosim-fused-uint8", "neurosim-reference"]
    for peer in PEERS:
        if versions[peer].startswith("unavailable"):
            print(f"skipping {peer}: {versions[peer]}")
        elif peer == "brian2":
            print("skipping brian2: its C++ code generation needs a compiler and does not "
                  "share the torch time-major API; see docs/performance.md")
        else:
            libs.append(peer)
    info = {"machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "versions": versions, "load_average": os.getloadavg(),
            "mode": "full" if full else "quick"}
    print(json.dumps(info, indent=1))
    rows: list[dict] = []
    if "a" in args.cases:
        sizes = ([(1000, 1000), (10_000, 1000), (100_000, 1000), (1_000_000, 100)] if full
                 else [(1000, 200), (10_000, 200), (100_000, 200)])
        rows += case_a(libs, sizes, repeats=5 if full else 3)
    if "b" in args.cases:
        rows += case_b(libs, repeats=7 if full else 3, memory=not args.no_memory)
    if "c" in args.cases:
        rows += case_c(1000, 1000 if full else 200, repeats=3)
    print()
    print(table(rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"info": info, "rows": rows}, fh, indent=1)
    print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
