"""The cost of the engine's divergence check (issue 16: target under 3 %).

    python benchmarks/check_cost.py                  # N = 1e4 and 1e5, T = 1000
    python benchmarks/check_cost.py --n 10000 --repeats 9

The compiled engine checks every element at every step: in the vectorised pass, one
subtraction and one comparison per state variable without a declared plausible range
(``x - x != 0``: not finite) and two comparisons per variable with one
(``state_ranges``; NaN fails both), OR-ed into one flag per block and step. This script
builds the same kernels without those state checks (the private switch
``neurosim.engine._codegen._STATE_CHECKS``; the input check stays) and times both on the
same input, one thread, alternating A and B within each repeat so that load on the
machine hits both alike. Times are CPU seconds of the calling thread
(``time.thread_time``: the kernel runs in it with ``threads=1``), which time spent
waiting for a core on a shared machine does not inflate. It prints the fastest and the
median time of each and the overhead ``checked / unchecked - 1`` of both (on a shared
machine the fastest run is the better estimate of the undisturbed cost).

Cases: a LIF population (exact integration on the grid, v only, range |v| <= 1e9; the
cheapest kernel, so the largest relative overhead) and AdEx under RK4 (two variables
with ranges), float32, drive spread so that about half the neurons fire.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import neurosim
from neurosim import engine
from neurosim.engine import _codegen as C


def _cases(n: int, T: int) -> dict[str, tuple]:
    lif = neurosim.discretise(neurosim.LIF(tau_mem=20e-3), 1e-4, "exact", precise=False)
    lif_u = torch.linspace(0.5, 2.0, n, dtype=torch.float32).expand(T, n)
    adex = neurosim.discretise(neurosim.AdEx(), 1e-4, "rk4")
    adex_u = torch.linspace(0.0, 1000.0, n, dtype=torch.float32).expand(T, n)
    return {"LIF exact": (lif, lif_u), "AdEx rk4": (adex, adex_u)}


def _time(step, u, checks: bool) -> float:
    C._STATE_CHECKS = checks
    try:
        state = step.model.initial_state(u.shape[1:], dtype=u.dtype)
        t0 = time.thread_time()
        engine.run(step, u, state, (), threads=1)
        return time.thread_time() - t0
    finally:
        C._STATE_CHECKS = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="10000,100000", help="population sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=1000, help="time steps T")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of each")
    args = parser.parse_args(argv)
    print(f"{'case':<10} {'N':>7} {'T':>5} {'checked s':>10} {'unchecked s':>12} "
          f"{'overhead':>9} {'(medians)':>10}")
    for n in (int(float(x)) for x in args.n.split(",")):
        for name, (step, u) in _cases(n, args.steps).items():
            for checks in (True, False):  # compile (or load) both kernels, touch memory
                _time(step, u, checks)
            on, off = [], []
            for _ in range(args.repeats):
                on.append(_time(step, u, True))
                off.append(_time(step, u, False))
            a, b = min(on), min(off)
            ma, mb = statistics.median(on), statistics.median(off)
            print(f"{name:<10} {n:>7} {args.steps:>5} {a:>10.4f} {b:>12.4f} "
                  f"{100 * (a / b - 1):>8.1f}% {100 * (ma / mb - 1):>9.1f}%", flush=True)


if __name__ == "__main__":
    main()
