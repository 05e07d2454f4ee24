"""Parameter sweeps: thousands of parameter sets, vectorised, chunked, distributed.

>>> import numpy as np, neurosim
>>> from neurosim.sweep import Grid, Sweep, run_sweep
>>> sweep = Sweep(neurosim.LIF, Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(0, 3, 31)),
...               input="I", dt=1e-4, duration=0.5, base={"t_ref": 2e-3},
...               measures=("rate", "latency", "cv"))
>>> ds = run_sweep(sweep, out="fi_sweep")     # xarray.Dataset; resumable
>>> ds.rate.values[:3]                        # Hz, one row per parameter set

See ``docs/sweeps.md``.
"""

from ._cli import add_cli, cli_main, load_config, sweep_from_config
from ._core import Chunk, Sweep, run_chunk
from ._executors import InProcess, dask_client, process_pool
from ._inputs import Constant, FunctionInput, Input, Noise, Poisson, Streams
from ._measures import BUILTIN as MEASURES
from ._run import SweepWarning, run_sweep
from ._space import Grid, Points, Random, Space
from ._store import ChunkFileWarning, assemble, load_results, sweep_of, to_grid

__all__ = [
    "MEASURES", "Chunk", "ChunkFileWarning", "Constant", "FunctionInput", "Grid", "InProcess",
    "Input", "Noise",
    "Points", "Poisson", "Random", "Space", "Streams", "Sweep", "SweepWarning", "add_cli",
    "assemble", "cli_main", "dask_client", "load_config", "load_results", "process_pool",
    "run_chunk", "run_sweep", "sweep_from_config", "sweep_of", "to_grid",
]
