"""Per-call overhead of neurosim's public calls over the compiled kernel (issue 14).

    python benchmarks/overhead.py [--repeats 7] [--quick]

Three public entry points run the same kernel (:func:`neurosim.engine.run`: the generated
time loop and its event buffers, no ``Result``):

* ``neurosim.simulate(..., record=None)`` and reading the time-sorted ``spike_index`` /
  ``spike_time``;
* a sequence layer of :mod:`neurosim.nn` (``LIFLayer``) called on ``[T, batch, N]`` under
  ``torch.no_grad()`` (inference);
* a parameter sweep (:func:`neurosim.sweep.run_sweep`, in-process, one chunk, ``rate``
  measured, results assembled into an ``xarray.Dataset``) against one ``simulate`` call
  with the swept parameter as a tensor.

For each, the median time over interleaved repeats, the kernel's, and the overhead
``public / kernel - 1`` (percent) and per call (microseconds). LIF, tau_mem = 10 ms,
subtractive reset, exact integration with spikes on the grid, float32, dt = 1 ms, drive
1 + 0.2 U(0, 1): about 40 Hz.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable

import torch

import neurosim as ns
from neurosim import engine

DT = 1e-3
TAU = 10e-3


def medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the calls interleaved (drift hits all alike)."""
    for fn in fns.values():
        fn()  # warm: compiled kernels loaded, buffers allocated
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def report(label: str, public: float, kernel: float, work: int) -> dict:
    over = public / kernel - 1.0
    print(f"  {label:<44} public {public * 1e3:9.3f} ms  kernel {kernel * 1e3:9.3f} ms  "
          f"overhead {100 * over:+6.1f} % ({(public - kernel) * 1e6:8.0f} us)  "
          f"{work / public:9.3e} neuron-steps/s", flush=True)
    return {"case": label, "public_s": public, "kernel_s": kernel, "overhead": over}


def drive(T: int, shape: tuple[int, ...]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (1.0 + 0.2 * torch.rand(shape, generator=gen)).expand(T, *shape).contiguous()


def simulate_case(N: int, T: int, repeats: int) -> dict:
    model = ns.LIF(tau_mem=TAU, reset="subtract")
    method = ns.ExactExponential(precise=False)
    u = drive(T, (N,))
    step = ns.discretise(model, DT, method)
    state = model.initial_state((N,), dtype=u.dtype)

    def public():
        res = ns.simulate(model, u, DT, method, record=None, backend="engine")
        return res.spike_index, res.spike_time

    secs = medians({"public": public, "kernel": lambda: engine.run(step, u, state)}, repeats)
    return report(f"simulate N={N} T={T}", secs["public"], secs["kernel"], N * T)


def layer_case(B: int, N: int, T: int, repeats: int) -> dict:
    layer = ns.nn.LIFLayer(N, dt=DT, method="exact", tau_mem=TAU, reset="subtract")
    model = ns.LIF(tau_mem=TAU, reset="subtract")
    step = ns.discretise(model, DT, ns.ExactExponential(precise=False))
    u = drive(T, (B, N))
    state = model.initial_state((B, N), dtype=u.dtype)

    def public():
        with torch.no_grad():
            return layer(u)

    secs = medians({"public": public,
                    "kernel": lambda: engine.run(step, u, state, dense=u.dtype)}, repeats)
    return report(f"nn.LIFLayer batch={B} N={N} T={T}", secs["public"], secs["kernel"],
                  B * N * T)


def sweep_case(n_sets: int, T: int, repeats: int) -> dict:
    from neurosim.sweep import Grid, Sweep, run_sweep

    currents = [1.0 + 0.2 * k / max(n_sets - 1, 1) for k in range(n_sets)]
    sweep = Sweep(ns.LIF, Grid(I=currents), input="I", dt=DT, duration=T * DT,
                  method="exact", base={"tau_mem": TAU, "reset": "subtract"},
                  options={"precise": False}, measures=("rate",), dtype="float32")
    model = ns.LIF(tau_mem=TAU, reset="subtract")
    u = torch.tensor(currents, dtype=torch.float32).expand(T, n_sets).contiguous()
    step = ns.discretise(model, DT, ns.ExactExponential(precise=False))
    state = model.initial_state((n_sets,), dtype=u.dtype)

    def public():
        with tempfile.TemporaryDirectory() as out:
            return run_sweep(sweep, out=out, chunk_size=n_sets, progress=False)

    secs = medians({"public": public, "kernel": lambda: engine.run(step, u, state)}, repeats)
    return report(f"sweep sets={n_sets} T={T} (one chunk)", secs["public"], secs["kernel"],
                  n_sets * T)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    args = parser.parse_args(argv)
    big = not args.quick
    rows = []
    print("simulate() over engine.run():")
    for N, T in [(100, 100), (1000, 1000), (10_000, 1000)] + ([(100_000, 1000)] if big else []):
        rows.append(simulate_case(N, T, args.repeats))
    print("neurosim.nn layer (inference) over engine.run(dense=...):")
    for B, N, T in [(1, 100, 100), (32, 256, 100)] + ([(128, 1024, 300)] if big else []):
        rows.append(layer_case(B, N, T, args.repeats))
    print("neurosim.sweep (in-process) over one engine.run() of the same sets:")
    for n_sets, T in [(100, 1000)] + ([(10_000, 1000)] if big else []):
        rows.append(sweep_case(n_sets, T, max(3, math.ceil(args.repeats / 2))))
    return rows


if __name__ == "__main__":
    main()
