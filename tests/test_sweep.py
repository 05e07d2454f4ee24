"""Parameter sweeps: closed-form f-I rates, executor/chunking invariance, resume, failures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import neurosim
from neurosim.sweep import (
    Grid,
    Noise,
    Points,
    Random,
    Streams,
    Sweep,
    SweepWarning,
    cli_main,
    load_results,
    run_sweep,
    sweep_of,
    to_grid,
)

TAU_REF = 2e-3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the vectorised chunks are elementwise; on a shared 2-core
    machine a second spinning thread only slows them down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _identical(a, b) -> None:
    import xarray as xr

    keep = ("sweep", "grid", "model", "failed")
    a = a.copy()
    b = b.copy()
    a.attrs = {k: v for k, v in a.attrs.items() if k in keep}
    b.attrs = {k: v for k, v in b.attrs.items() if k in keep}
    xr.testing.assert_identical(a, b)


# -- closed form ---------------------------------------------------------------------------
def test_lif_fi_sweep_10000_points_matches_closed_form():
    """10,000 (tau_mem, I) sets in one run; spike counts, rates, latencies and CVs
    against the closed form of the LIF with constant drive.

    From rest v_leak the first spike comes at T0 = tau ln(rI / (rI + v_leak - v_th)),
    then every t_ref + T with T = tau ln((rI + v_leak - v_reset)/(rI + v_leak - v_th)).
    Exact integration with precise spike times gives these times to round-off, so the
    count in [0, D] is exactly 1 + floor((D - T0)/(t_ref + T)) unless a spike falls
    within round-off of D; and the rate count/D is within 1/D of 1/(t_ref + T) (a
    periodic train has D·rate ± 1 spikes in a window of length D).
    """
    v_leak, v_th, v_reset, r = 0.1, 1.0, -0.1, 1.0
    taus = np.linspace(5e-3, 50e-3, 100)
    currents = np.linspace(0.5, 5.0, 100)
    dt, duration = 2e-3, 0.06
    sweep = Sweep(neurosim.LIF, Grid(tau_mem=taus, I=currents), input="I", dt=dt,
                  duration=duration, base={"t_ref": TAU_REF, "v_leak": v_leak, "v_th": v_th,
                                           "v_reset": v_reset, "r": r},
                  measures=("count", "rate", "latency", "cv"))
    ds = run_sweep(sweep, chunk_size=2500, progress=False)
    assert ds.sizes["point"] == 10_000 and (ds.error.values == "").all()
    tau, current = ds.tau_mem.values, ds.I.values
    drive = r * current + v_leak - v_th
    fires = drive > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = tau * np.log(r * current / drive)
        isi = TAU_REF + tau * np.log((r * current + v_leak - v_reset) / drive)
    expected = np.where(fires & (t0 <= duration),
                        1 + np.floor((duration - t0) / isi), 0)
    k_last = np.floor((duration - t0) / isi)
    near_edge = fires & (np.minimum(np.abs(duration - t0 - k_last * isi),
                                    np.abs(duration - t0 - (k_last + 1) * isi)) < 1e-9)
    count = ds["count"].values
    assert fires.sum() > 9000 and (~fires).sum() > 500
    np.testing.assert_array_equal(count[~near_edge], expected[~near_edge])
    assert np.all(np.abs(count - expected)[near_edge] <= 1)
    rate_closed = np.where(fires, 1 / isi, 0.0)
    assert np.all(np.abs(ds.rate.values - rate_closed) <= 1 / duration + 1e-9)
    has = count > 0
    np.testing.assert_allclose(ds.latency.values[has], t0[has], rtol=1e-10)
    assert np.isnan(ds.latency.values[~has]).all()
    cv = ds.cv.values[count >= 3]
    assert cv.size > 5000 and np.all(cv < 1e-9)  # a periodic train: all ISIs equal


def test_grid_rows_and_to_grid():
    sweep = Sweep("LIF", Grid(tau_mem=[10e-3, 20e-3], I=[1.5, 2.0, 3.0]), input="I",
                  dt=1e-3, duration=0.05, measures="rate")
    ds = sweep.run(progress=False)
    np.testing.assert_array_equal(ds.tau_mem.values, np.repeat([10e-3, 20e-3], 3))
    np.testing.assert_array_equal(ds.I.values, np.tile([1.5, 2.0, 3.0], 2))
    grid = to_grid(ds)
    assert grid.rate.dims == ("tau_mem", "I") and grid.rate.shape == (2, 3)
    assert grid.rate.sel(tau_mem=20e-3, I=3.0).item() == ds.rate.values[5]
    # rates grow with I and shrink with tau_mem
    assert np.all(np.diff(grid.rate.values, axis=1) > 0)
    assert np.all(grid.rate.values[0] > grid.rate.values[1])


# -- reproducibility: chunking and executors ------------------------------------------------
NOISY = dict(dt=1e-3, duration=0.04, base={"t_ref": TAU_REF},
             measures=("rate", "latency", "cv", "spike_times"), record="v", seed=7)


def _noisy_sweep() -> Sweep:
    return Sweep(neurosim.LIF, Grid(tau_mem=[10e-3, 25e-3], I=np.linspace(0.8, 2.5, 9)),
                 input=Noise(mean="I", std=0.8), **NOISY)


def test_chunked_unchunked_process_pool_and_dask_identical():
    sweep = _noisy_sweep()
    whole = run_sweep(sweep, progress=False)
    assert whole.attrs["chunks_computed"] == 1
    assert whole.sizes["spike"] > 0 and np.isfinite(whole.v.values).all()
    chunked = run_sweep(sweep, chunk_size=5, progress=False)
    assert chunked.attrs["chunks_computed"] == 4
    _identical(whole, chunked)
    pooled = run_sweep(sweep, chunk_size=4, executor="process", workers=2, progress=False)
    assert pooled.attrs["chunks_computed"] == 5
    _identical(whole, pooled)
    pytest.importorskip("distributed")
    from neurosim.sweep import dask_client

    with dask_client(workers=1, threads=2, processes=False) as client:
        dasked = run_sweep(sweep, chunk_size=3, executor=client, progress=False)
        # the same cluster reached through its scheduler address (how a real cluster is used)
        address = client.scheduler.address
        remote = run_sweep(sweep, chunk_size=6, executor=address, progress=False)
    assert dasked.attrs["chunks_computed"] == 6 and remote.attrs["chunks_computed"] == 3
    _identical(whole, dasked)
    _identical(whole, remote)


def test_random_streams_are_per_set_spawned_children():
    """Set k's stream is child k of SeedSequence(seed).spawn: independent of the chunk."""
    rows = np.array([3, 0, 5])
    streams = Streams(11, rows, n_steps=4, dt=1e-3, dtype=torch.float64)
    children = np.random.SeedSequence(11).spawn(6)
    draws = streams.normal()
    for col, row in enumerate(rows):
        expected = np.random.default_rng(children[row]).standard_normal(4)
        np.testing.assert_array_equal(draws[:, col].numpy(), expected)
    # different sets get different noise, the noise changes with the seed
    a = run_sweep(_noisy_sweep(), progress=False)
    assert len({tuple(row) for row in a.v.values[:, :5]}) == a.sizes["point"]
    b = run_sweep(Sweep(neurosim.LIF, Grid(tau_mem=[10e-3, 25e-3], I=np.linspace(0.8, 2.5, 9)),
                        input=Noise(mean="I", std=0.8), **{**NOISY, "seed": 8}), progress=False)
    assert not np.array_equal(a.v.values, b.v.values)


def test_random_space_and_points():
    space = Random(50, {"tau_mem": (5e-3, 50e-3), "I": (1.5, 3.0)}, seed=3, log=["tau_mem"])
    cols = space.columns()
    np.testing.assert_array_equal(cols["I"], Random(50, {"tau_mem": (5e-3, 50e-3),
                                                         "I": (1.5, 3.0)}, seed=3,
                                                    log=["tau_mem"]).columns()["I"])
    assert cols["tau_mem"].min() >= 5e-3 and cols["tau_mem"].max() <= 50e-3
    ds = run_sweep(Sweep("LIF", space, input="I", dt=1e-3, duration=0.05), progress=False)
    tau, current = ds.tau_mem.values, ds.I.values
    # no refractory period: rate within 1/D of 1/(tau ln(I/(I-1)))
    assert np.all(np.abs(ds.rate.values - 1 / (tau * np.log(current / (current - 1))))
                  <= 1 / 0.05 + 1e-9)
    pts = Sweep("LIF", [{"tau_mem": 10e-3, "I": 2.0}, {"tau_mem": 20e-3, "I": 2.0}],
                input="I", dt=1e-3, duration=0.05, measures="latency")
    lat = run_sweep(pts, progress=False).latency.values
    np.testing.assert_allclose(lat, [10e-3 * math.log(2), 20e-3 * math.log(2)], rtol=1e-10)


def test_poisson_input_counts_have_the_swept_rate():
    """Poisson(rate='nu') gives each set weight x Poisson(nu dt) counts per step."""
    sweep = Sweep(neurosim.LIF, Grid(tau_syn=[5e-3], nu=[50.0, 200.0]),
                  input=neurosim.sweep.Poisson(rate="nu", weight=0.5), dt=1e-3, duration=20.0)
    rows = np.arange(2)
    params = {k: torch.as_tensor(v[rows]) for k, v in sweep.columns().items()}
    u = sweep.input.build(params, Streams(0, rows, sweep.n_steps, sweep.dt, torch.float64))
    assert u.shape == (20_000, 2) and set(np.unique(u.numpy() / 0.5)) <= set(range(20))
    lam = np.array([50.0, 200.0]) * 1e-3
    mean = u.numpy().mean(0) / 0.5
    assert np.all(np.abs(mean - lam) < 5 * np.sqrt(lam / 20_000))  # 5 standard errors


def spike_count_and_last_v(result):
    """A user measure with a trailing dimension: [n, 2]."""
    return torch.stack([result.spike_count(), result.v[-1]], dim=1)


def test_user_measure_with_trailing_dimension():
    sweep = Sweep("LIF", Grid(tau_mem=[10e-3, 20e-3], I=[0.5, 2.0]), input="I", dt=1e-3,
                  duration=0.05, measures=("count", spike_count_and_last_v), record="v")
    ds = run_sweep(sweep, chunk_size=3, progress=False)
    assert ds.spike_count_and_last_v.dims == ("point", "spike_count_and_last_v_dim1")
    np.testing.assert_array_equal(ds.spike_count_and_last_v.values[:, 0], ds["count"].values)
    np.testing.assert_array_equal(ds.spike_count_and_last_v.values[:, 1], ds.v.values[:, -1])
    # I = 0.5 stays below threshold: v relaxes to 0.5 (1 - exp(-t / tau))
    np.testing.assert_allclose(ds.v.values[[0, 2], -1], 0.5 * -np.expm1(-0.05 / np.array(
        [10e-3, 20e-3])), rtol=1e-12)


# -- persistence and resume ----------------------------------------------------------------
def _fi_sweep(n_current: int = 12) -> Sweep:
    return Sweep(neurosim.LIF, Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(1.2, 3.0, n_current)),
                 input="I", dt=1e-3, duration=0.05, base={"t_ref": TAU_REF},
                 measures=("rate", "cv", "spike_times"))


KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import neurosim
    from neurosim.sweep import _store
    from neurosim.sweep import Grid, Sweep, run_sweep

    saved = []
    original = _store.Store.save_chunk

    def save_then_die(self, chunk):
        original(self, chunk)
        saved.append(chunk.start)
        if len(saved) == 2:
            os.kill(os.getpid(), signal.SIGKILL)   # a crash right after two chunks

    _store.Store.save_chunk = save_then_die
    sweep = Sweep(neurosim.LIF, Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(1.2, 3.0, 12)),
                  input="I", dt=1e-3, duration=0.05, base={"t_ref": 2e-3},
                  measures=("rate", "cv", "spike_times"))
    run_sweep(sweep, out=sys.argv[1], chunk_size=4, progress=False)
""")


def test_resume_after_kill_computes_only_missing_chunks(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    files = sorted((out / "chunks").glob("rows-*.npz"))
    assert len(files) == 2 and not (out / "results.nc").exists()
    (out / "chunks" / ".rows-000000008-000000012.npz.x.tmp").write_bytes(b"partial")
    sweep = _fi_sweep()
    resumed = run_sweep(sweep, out=out, chunk_size=4, progress=False)
    assert resumed.attrs["chunks_loaded"] == 2
    assert resumed.attrs["chunks_computed"] == 6 - 2
    fresh = run_sweep(sweep, chunk_size=4, progress=False)
    _identical(fresh, resumed)
    again = run_sweep(sweep, out=out, chunk_size=4, progress=False)
    assert again.attrs["chunks_computed"] == 0 and again.attrs["chunks_loaded"] == 6
    # the saved results carry the description
    loaded = load_results(out)
    _identical(resumed, loaded)
    assert sweep_of(loaded).to_json() == sweep.to_json()
    assert json.loads((out / "sweep.json").read_text()) == sweep.describe()


def test_resume_refuses_a_different_sweep(tmp_path):
    run_sweep(_fi_sweep(), out=tmp_path, chunk_size=8, progress=False)
    with pytest.raises(ValueError, match="different sweep.*space"):
        run_sweep(_fi_sweep(13), out=tmp_path, progress=False)
    fresh = run_sweep(_fi_sweep(13), out=tmp_path, resume=False, progress=False)
    assert fresh.attrs["chunks_loaded"] == 0 and fresh.sizes["point"] == 26


# -- failures stay isolated ----------------------------------------------------------------
def test_failing_parameter_set_is_isolated():
    """v_reset >= v_th for one set makes the chunk's model invalid: bisection isolates it."""
    sets = [{"tau_mem": 10e-3 + 1e-3 * k, "v_reset": 0.0, "I": 2.0} for k in range(10)]
    sets[6]["v_reset"] = 1.5
    sweep = Sweep("LIF", Points(sets), input="I", dt=1e-3, duration=0.05,
                  measures=("rate", "latency"))
    with pytest.warns(SweepWarning, match=r"(?s)1 of 10 parameter sets failed.*'point': 6.*"
                                          r"'v_reset': 1.5.*v_reset must be < v_th"):
        ds = run_sweep(sweep, chunk_size=10, progress=False)
    assert ds.attrs["failed"] == 1
    assert ds.error.values[6].startswith("ValueError: v_reset must be < v_th")
    assert np.isnan(ds.rate.values[6])
    ok = np.arange(10) != 6
    assert (ds.error.values[ok] == "").all()
    good = run_sweep(Sweep("LIF", Points([s for k, s in enumerate(sets) if k != 6]),
                           input="I", dt=1e-3, duration=0.05, measures=("rate", "latency")),
                     progress=False)
    np.testing.assert_array_equal(ds.rate.values[ok], good.rate.values)
    np.testing.assert_array_equal(ds.latency.values[ok], good.latency.values)


def nan_for_large_tau(params, rng):
    """An input function that breaks (NaN drive) for one parameter set."""
    u = params["I"].expand(rng.n_steps, -1).clone()
    u[:, params["tau_mem"] > 0.045] = float("nan")
    return u


def test_nan_input_set_is_reported_with_its_parameters(tmp_path):
    sweep = Sweep("LIF", Grid(tau_mem=[10e-3, 20e-3, 50e-3], I=[1.5, 2.5]),
                  input=nan_for_large_tau, dt=1e-3, duration=0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = run_sweep(sweep, out=tmp_path, progress=False)
    msgs = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert len(msgs) == 1 and "'tau_mem': 0.05" in msgs[0] and "must be finite" in msgs[0]
    failed = ds.error.values != ""
    np.testing.assert_array_equal(failed, ds.tau_mem.values == 50e-3)
    assert np.isfinite(ds.rate.values[~failed]).all() and (ds.rate.values[~failed] > 0).all()
    assert (load_results(tmp_path).error.values != "").sum() == 2


def test_diverging_set_is_marked_alone():
    """Forward Euler with dt = 3 tau_mem is unstable: that set's state grows past LIF's
    declared range (|v| <= 1e9) and only it is marked failed; the stable set in the same
    chunk is unaffected."""
    sweep = Sweep("LIF", Grid(tau_mem=[1e-3, 10e-3], I=[1.5]), input="I", dt=3e-3,
                  duration=0.6, method="euler", base={"reset": "subtract"}, dtype="float32")
    with pytest.warns(SweepWarning, match="'tau_mem': 0.001.*state variable 'v'.*left its "
                                          "declared plausible range"):
        ds = run_sweep(sweep, progress=False)
    assert list(ds.error.values != "") == [True, False]
    alone = run_sweep(Sweep("LIF", Grid(tau_mem=[10e-3], I=[1.5]), input="I", dt=3e-3,
                            duration=0.6, method="euler", base={"reset": "subtract"},
                            dtype="float32"), progress=False)
    assert np.isnan(ds.rate.values[0]) and ds.rate.values[1] == alone.rate.values[0] > 0


# -- validation and CLI --------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(params={"tau_men": [1e-2]}), "tau_men"),
    (dict(duration=0.0105), "multiple of dt"),
    (dict(measures=("rates",)), "rates"),
    (dict(record="w"), "record"),
    (dict(base={"v_th": 1.0, "t_reff": 1e-3}), "t_reff"),
    (dict(params={"I": [1.0]}, input="J"), "J"),
    (dict(params={"tau_mem": [1e-2, float("nan")]}), "finite"),
    (dict(params={"tau_mem": [1e-2], "rate": [1.0]}, input=1.5), "rate"),
])
def test_bad_sweeps_raise_naming_the_problem(kwargs, match):
    args = dict(model="LIF", params={"tau_mem": [1e-2], "I": [1.5]}, input="I", dt=1e-3,
                duration=0.01)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Sweep(args.pop("model"), args.pop("params"), args.pop("input"), **args)


def test_cli_sweep_from_toml(tmp_path, capsys):
    config = tmp_path / "fi.toml"
    config.write_text(textwrap.dedent("""
        model = "LIF"
        input = "I"
        dt = 1e-3
        duration = 0.05
        measures = ["rate", "latency"]

        [base]
        t_ref = 2e-3

        [grid]
        tau_mem = [0.01, 0.02]
        I = { start = 1.5, stop = 3.0, num = 4 }

        [run]
        out = "fi_out"
        chunk_size = 3
    """))
    assert cli_main([str(config), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "computed 3 chunks" in out
    figure = tmp_path / "fi_out" / "sweep.png"  # a heatmap of the rate beside the results
    assert f"wrote {figure}" in out and figure.stat().st_size > 5000
    ds = load_results(tmp_path / "fi_out")
    direct = run_sweep(Sweep("LIF", Grid(tau_mem=[0.01, 0.02], I=np.linspace(1.5, 3.0, 4)),
                             input="I", dt=1e-3, duration=0.05, base={"t_ref": 2e-3},
                             measures=("rate", "latency")), progress=False)
    _identical(direct, ds)
    assert cli_main([str(config), "--no-progress"]) == 0
    assert "computed 0 chunks, reused 3" in capsys.readouterr().out
    config.write_text('model = "LIF"\ndt = 1e-3\nduration = 0.05\n')
    assert cli_main([str(config)]) == 2
    assert "exactly one of [grid]" in capsys.readouterr().err


def test_cli_registered_in_neurosim_command():
    from neurosim.cli import build_parser

    args = build_parser().parse_args(["sweep", "x.toml", "--workers", "2"])
    assert args.config == "x.toml" and args.workers == 2
