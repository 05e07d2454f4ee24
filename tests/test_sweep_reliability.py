"""Sweeps under hostile configs and faults (issue 16): names resolve only in neurosim's
registries or explicitly allowed modules, scheduler addresses only from the command line,
output folders that are not a sweep's are refused, killed workers and parents, corrupt
and tampered chunks, invalid first sets, BaseException from measures, SimulationDiverged,
and sweeps too large for memory. See docs/reliability.md."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
import torch

import neurosim
from neurosim.errors import SimulationDiverged
from neurosim.sweep import (
    ChunkFileWarning,
    Grid,
    Points,
    Random,
    Sweep,
    SweepWarning,
    cli_main,
    load_results,
    run_chunk,
    run_sweep,
    sweep_from_config,
    sweep_of,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _identical(a, b) -> None:
    import xarray as xr

    keep = ("sweep", "grid", "model", "failed")
    a, b = a.copy(), b.copy()
    a.attrs = {k: v for k, v in a.attrs.items() if k in keep}
    b.attrs = {k: v for k, v in b.attrs.items() if k in keep}
    xr.testing.assert_identical(a, b)


def _sweep(n: int = 12, **kw) -> Sweep:
    kw.setdefault("measures", ("rate", "latency"))
    return Sweep("LIF", Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(1.2, 3.0, n // 2)),
                 input="I", dt=1e-3, duration=0.03, **kw)


BASE = textwrap.dedent("""
    model = "LIF"
    input = "I"
    dt = 1e-3
    duration = 0.02
    measures = ["rate"]

    [grid]
    I = [1.5, 2.0]
""")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def _replace(key: str, line: str) -> str:
    kept = [x for x in BASE.splitlines() if not x.startswith(f"{key} =")]
    return line + "\n" + "\n".join(kept) + "\n"


# -- names resolve only in neurosim's registries ------------------------------------------
@pytest.mark.parametrize("key, line, match", [
    ("model", 'model = "this:s"', r"model 'this:s': module 'this' is not allowed"),
    ("measures", 'measures = ["sys:exit"]', r"measure 'sys:exit': module 'sys' is not allowed"),
    ("measures", 'measures = ["builtins:input"]',
     r"measure 'builtins:input': module 'builtins' is not allowed"),
    ("measures", 'measures = ["os:system"]', r"module 'os' is not allowed"),
    ("measures", 'measures = ["neurosim:__class__"]', r"underscore .* never resolved"),
    ("model", 'model = "neurosim.sweep:__builtins__"', r"underscore .* never resolved"),
    ("measures", 'measures = ["neurosim.sweep._core:np"]', r"underscore .* never resolved"),
    ("model", 'model = "neurosim:LIF.__init__.__globals__"', r"underscore .* never resolved"),
    ("input", 'input = { kind = "function", function = "subprocess:getoutput" }',
     r"input function 'subprocess:getoutput': module 'subprocess' is not allowed"),
    ("model", 'model = "Result"', r"model 'Result' is not one of neurosim's names"),
])
def test_config_names_outside_the_registries_are_refused(tmp_path, capsys, key, line, match):
    before = set(sys.modules)
    rc = cli_main([str(_config(tmp_path, _replace(key, line))), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert __import__("re").search(match, err), err
    assert "Traceback" not in err
    assert {"this", "antigravity"}.isdisjoint(set(sys.modules) - before)
    assert not list(tmp_path.glob("s_sweep*"))  # nothing ran, nothing written


def test_neurosim_names_resolve_by_plain_and_qualified_name():
    assert Sweep("LIF", Grid(I=[1.0]), input="I", dt=1e-3, duration=0.01).model is neurosim.LIF
    q = f"{neurosim.LIF.__module__}:{neurosim.LIF.__qualname__}"
    assert Sweep(q, Grid(I=[1.0]), input="I", dt=1e-3, duration=0.01).model is neurosim.LIF


MYMOD = textwrap.dedent("""
    import os
    from os import system

    import torch


    def peak_v(result):
        return result.v.max(dim=0).values


    def drive(params, rng):
        return params["I"].expand(rng.n_steps, -1)
""")


@pytest.fixture
def mymod(tmp_path, monkeypatch):
    pkg = tmp_path / "mods"
    pkg.mkdir()
    (pkg / "nsim_user_mod.py").write_text(MYMOD)
    monkeypatch.syspath_prepend(str(pkg))
    yield "nsim_user_mod"
    sys.modules.pop("nsim_user_mod", None)


def test_allow_module_option_lets_a_config_name_its_functions(tmp_path, capsys, mymod):
    text = _replace("measures", 'measures = ["rate", "nsim_user_mod:peak_v"]').replace(
        'input = "I"', 'input = { kind = "function", function = "nsim_user_mod:drive" }')
    text = text.replace('measures = ["rate"', 'record = "v"\nmeasures = ["rate"')
    cfg = _config(tmp_path, text)
    assert cli_main([str(cfg), "--no-progress"]) == 2
    assert "module 'nsim_user_mod' is not allowed" in capsys.readouterr().err
    assert "nsim_user_mod" not in sys.modules  # refused before any import
    assert cli_main([str(cfg), "--no-progress", "--allow-module", "nsim_user_mod"]) == 0
    ds = load_results(tmp_path / "s_sweep")
    np.testing.assert_allclose(ds.peak_v.values, ds.v.values.max(axis=1))
    # a results file never chooses code: rebuilding its sweep needs the same permission
    with pytest.raises(ValueError, match="module 'nsim_user_mod' is not allowed"):
        sweep_of(ds)
    assert list(sweep_of(ds, allow_modules=["nsim_user_mod"]).measures) == ["rate", "peak_v"]


@pytest.mark.parametrize("name", ["nsim_user_mod:system", "nsim_user_mod:os.system",
                                  "nsim_user_mod:torch.load", "nsim_user_mod:os"])
def test_allowed_module_does_not_reach_what_it_imported(mymod, name):
    with pytest.raises(ValueError, match="not a class or function defined in an allowed"):
        _sweep(measures=[name], allow_modules=["nsim_user_mod"])


def test_allow_modules_names_are_checked():
    with pytest.raises(ValueError, match=r"allow_modules: '_private' is not a module name"):
        _sweep(allow_modules=["_private"])


def test_sys_exit_measure_allowed_explicitly_is_isolated(tmp_path, capsys):
    """Even an allowed sys:exit cannot end the run: SystemExit fails its sets only."""
    cfg = _config(tmp_path, _replace("measures", 'measures = ["rate", "sys:exit"]'))
    rc = cli_main([str(cfg), "--no-progress", "--allow-module", "sys"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "2 of 2 parameter sets failed" in err and "measure 'exit' raised SystemExit" in err
    assert (tmp_path / "s_sweep" / "results.nc").exists()


# -- executors only from the command line -------------------------------------------------
@pytest.mark.parametrize("address", ["tcp://10.0.0.1:8786", "dask://evil:1", "tls://x:1"])
def test_scheduler_address_in_a_config_file_is_refused(tmp_path, capsys, address):
    cfg = _config(tmp_path, BASE + f'\n[run]\nexecutor = "{address}"\n')
    assert cli_main([str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"run.executor = '{address}': a scheduler address is accepted only on the " \
           "command line" in err


def test_local_executors_in_a_config_file_are_accepted():
    for ex in ("inprocess", "process", "dask"):
        cfg = __import__("tomllib").loads(BASE + f'\n[run]\nexecutor = "{ex}"\n')
        assert sweep_from_config(cfg)[1]["executor"] == ex


# -- wrongly typed config values: rc 2, never a traceback ---------------------------------
@pytest.mark.parametrize("extra", [
    'dtype = ["float64"]', 'base = [1]', 'options = [1]', 'record = [["v"]]',
    'measures = [["rate"]]', 'seed = [0]', 'method = ["exact"]',
    '[run]\nout = ["x"]', '[run]\nworkers = [2]', '[run]\nexecutor = ["process"]',
    '[run]\nchunk_size = 0', '[run]\nmax_result_memory = "lots"',
])
def test_wrongly_typed_config_values_exit_2(tmp_path, capsys, extra):
    head, _, grid = BASE.partition("[grid]")
    text = head + (extra if not extra.startswith("[") else "") + "\n[grid]" + grid
    if extra.startswith("["):
        text += "\n" + extra + "\n"
    assert cli_main([str(_config(tmp_path, text)), "--no-progress"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("text, match", [
    ('model = ["LIF"]\ndt = 1e-3\nduration = 0.01\n[grid]\nI = [1.0]\n', "model must be"),
    ('model = "LIF"\ndt = 1e-3\nduration = 0.01\ngrid = [1, 2]\n', r"\[grid\] must be a table"),
    ('model = "LIF"\ndt = 1e-3\nduration = 0.01\npoints = 5\n', r"\[\[points\]\] must be"),
    ('model = "LIF"\ndt = 1e-3\nduration = 0.01\n[grid]\nI = {start=0, stop=1, num=1e10}\n',
     r"axis 'I': num must be an integer from 1 to 10000000"),
])
def test_bad_space_tables_exit_2(tmp_path, capsys, text, match):
    assert cli_main([str(_config(tmp_path, text)), "--no-progress"]) == 2
    assert __import__("re").search(match, capsys.readouterr().err)


# -- output folder policy ------------------------------------------------------------------
def test_a_folder_that_is_not_a_sweep_folder_is_never_written(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.nc").write_text("my thesis data")
    (mine / "sweep.json").write_text('{"not": "neurosim"}')
    for resume in (True, False):
        with pytest.raises(ValueError, match="is a non-empty folder that is not a neurosim "
                                             "sweep folder"):
            run_sweep(_sweep(), out=mine, resume=resume, progress=False)
    cfg = _config(tmp_path, BASE)
    assert cli_main([str(cfg), "--no-progress", "--fresh", "--out", str(mine)]) == 2
    assert "not a neurosim sweep folder" in capsys.readouterr().err
    assert (mine / "results.nc").read_text() == "my thesis data"
    assert sorted(p.name for p in mine.iterdir()) == ["results.nc", "sweep.json"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        run_sweep(_sweep(), out=a_file, progress=False)


def test_new_empty_and_own_folders_are_accepted_and_fresh_starts_over(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".sweep.json.abc123.tmp").write_bytes(b"{")  # left by a crash while marking it
    first = run_sweep(_sweep(), out=empty, chunk_size=4, progress=False)
    assert (empty / "sweep.json").exists() and (empty / "results.nc").exists()
    (empty / "notes.txt").write_text("kept")
    again = run_sweep(_sweep(), out=empty, chunk_size=4, resume=False, progress=False)
    assert again.attrs["chunks_loaded"] == 0 and again.attrs["chunks_computed"] == 3
    _identical(first, again)
    assert (empty / "notes.txt").read_text() == "kept"
    run_sweep(_sweep(), out=tmp_path / "new" / "deep", progress=False)
    assert (tmp_path / "new" / "deep" / "results.nc").exists()


# -- memory bound before allocation ---------------------------------------------------------
def test_huge_grid_is_refused_before_anything_is_allocated(tmp_path, capsys):
    sweep = Sweep("LIF", Grid(tau_mem=np.linspace(1e-3, 1e-1, 100_000),
                              I=np.linspace(0, 3, 100_000)), input="I", dt=1e-3, duration=0.01)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"results of this sweep \(10000000000 parameter sets\) "
                                         r"need about .* GiB, above max_result_memory = 4 GiB"):
        run_sweep(sweep, out=tmp_path / "big", progress=False)
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "big").exists()
    text = BASE.replace("I = [1.5, 2.0]", "I = {start=0, stop=3, num=100000}\n"
                                          "tau_mem = {start=0.001, stop=0.1, num=100000}")
    assert cli_main([str(_config(tmp_path, text)), "--no-progress"]) == 2
    assert "above max_result_memory" in capsys.readouterr().err


def test_result_memory_limit_is_overridable(tmp_path, capsys):
    with pytest.raises(ValueError, match="max_result_memory"):
        run_sweep(_sweep(), max_result_memory=1000, progress=False)
    assert run_sweep(_sweep(), max_result_memory=10**6, progress=False).sizes["point"] == 12
    cfg = _config(tmp_path, BASE)
    assert cli_main([str(cfg), "--no-progress", "--max-result-memory", "100"]) == 2
    assert cli_main([str(cfg), "--no-progress", "--max-result-memory", "1M"]) == 0


def test_random_space_beyond_the_bound_is_refused_before_sampling():
    sweep = Sweep("LIF", Random(10**10, {"I": (0.0, 3.0)}), input="I", dt=1e-3, duration=0.01)
    with pytest.raises(ValueError, match="above max_result_memory"):
        run_sweep(sweep, progress=False)


# -- failures stay isolated ----------------------------------------------------------------
def test_invalid_first_parameter_set_is_isolated():
    sets = [{"v_reset": 0.0, "I": 2.0} for _ in range(6)]
    sets[0]["v_reset"] = 1.5
    sweep = Sweep("LIF", Points(sets), input="I", dt=1e-3, duration=0.03, record="v",
                  measures=("rate",))
    with pytest.warns(SweepWarning, match=r"(?s)1 of 6 parameter sets failed.*'point': 0"):
        ds = run_sweep(sweep, progress=False)
    assert ds.error.values[0].startswith("ValueError: v_reset must be < v_th")
    assert (ds.error.values[1:] == "").all() and (ds.rate.values[1:] > 0).all()
    with pytest.raises(ValueError, match="record: LIF has no state variable 'w'"):
        Sweep("LIF", Points(sets), input="I", dt=1e-3, duration=0.03, record="w")


def test_simulation_diverged_fails_only_its_set(monkeypatch):
    real = neurosim.simulate

    def fragile(model, u, dt, method, **kw):
        tau = torch.as_tensor(model.tau_mem).reshape(-1)
        bad = torch.nonzero(tau < 5e-3)
        if bad.numel():
            raise SimulationDiverged(f"state 'v' became inf at step 3 (t = 0.004 s), neuron "
                                     f"{int(bad[0])}; use a smaller dt", step=3, time=4e-3,
                                     neuron=int(bad[0]), variable="v", value=float("inf"))
        return real(model, u, dt, method, **kw)

    monkeypatch.setattr(neurosim, "simulate", fragile)
    sweep = Sweep("LIF", Grid(tau_mem=[20e-3, 1e-3, 10e-3], I=[1.5, 2.5]), input="I",
                  dt=1e-3, duration=0.03)
    with pytest.warns(SweepWarning, match="(?s)2 of 6 parameter sets failed.*SimulationDiverged"):
        ds = run_sweep(sweep, chunk_size=6, progress=False)
    failed = ds.error.values != ""
    np.testing.assert_array_equal(failed, ds.tau_mem.values == 1e-3)
    assert all("SimulationDiverged: state 'v' became inf" in e for e in ds.error.values[failed])
    assert (ds.rate.values[~failed] > 0).all() and np.isnan(ds.rate.values[failed]).all()


def exit_for_high_current(result):
    """A user measure that raises SystemExit for one set (row-dependent)."""
    if (result.spike_count() > 10).any():
        raise SystemExit(3)
    return result.spike_count()


def interrupt_measure(result):
    raise KeyboardInterrupt("raised by the measure, not by Ctrl-C")


def generator_exit_measure(result):
    raise GeneratorExit


@pytest.mark.parametrize("measure, name", [
    (exit_for_high_current, "SystemExit"),
    (interrupt_measure, "KeyboardInterrupt"),
    (generator_exit_measure, "GeneratorExit"),
])
def test_base_exceptions_from_measures_stay_isolated(measure, name):
    sweep = Sweep("LIF", Grid(I=[1.2, 1.5, 8.0]), input="I", dt=1e-3, duration=0.05,
                  measures=("rate", measure))
    with pytest.warns(SweepWarning):
        ds = run_sweep(sweep, chunk_size=3, progress=False)
    failed = ds.error.values != ""
    assert failed.any()
    if measure is exit_for_high_current:
        np.testing.assert_array_equal(failed, [False, False, True])
    assert all(f"UserCodeError: measure '{measure.__name__}' raised {name}" in e
               for e in ds.error.values[failed])


def ctrl_c_measure(result):
    signal.raise_signal(signal.SIGINT)  # a real SIGINT, as Ctrl-C sends
    return result.spike_count()


def test_a_real_ctrl_c_still_stops_the_sweep():
    sweep = Sweep("LIF", Grid(I=[1.5, 2.0]), input="I", dt=1e-3, duration=0.02,
                  measures=(ctrl_c_measure,))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, progress=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- executors that break --------------------------------------------------------------------
class BreakingPool:
    """A pool whose worker 'dies' while running its third task: that future fails with
    BrokenProcessPool and every later submit raises it, as ProcessPoolExecutor does."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn, *args):
        self.calls += 1
        if self.calls > 3:
            raise BrokenProcessPool("A child process terminated abruptly")
        fut: cf.Future = cf.Future()
        if self.calls == 3:
            fut.set_exception(BrokenProcessPool("A child process terminated abruptly"))
        else:
            fut.set_result(fn(*args))
        return fut


def test_broken_pool_reports_lost_chunks_writes_results_and_resume_recomputes(tmp_path):
    sweep = _sweep()
    out = tmp_path / "run"
    with pytest.warns(SweepWarning, match="8 of 12 parameter sets failed"):
        ds = run_sweep(sweep, out=out, executor=BreakingPool(), chunk_size=2,
                       max_in_flight=1, progress=False)
    lost = ds.error.values != ""
    assert lost.sum() == 8 and not lost[:4].any()
    assert all(e.startswith("chunk lost: BrokenProcessPool") and "resumed run computes it "
               "again" in e for e in ds.error.values[lost])
    assert (out / "results.nc").exists() and load_results(out).attrs["failed"] == 8
    assert len(list((out / "chunks").glob("rows-*.npz"))) == 2  # lost chunks are not saved
    resumed = run_sweep(sweep, out=out, chunk_size=2, progress=False)
    assert resumed.attrs["chunks_loaded"] == 2 and resumed.attrs["chunks_computed"] == 4
    _identical(resumed, run_sweep(sweep, chunk_size=2, progress=False))


def kill_worker_once(result):
    """Kills its own (worker) process the first time; the marker file remembers."""
    marker = Path(os.environ["NEUROSIM_TEST_KILL_MARKER"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return result.spike_count()


def test_killed_process_pool_worker_is_reported_and_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSIM_TEST_KILL_MARKER", str(tmp_path / "killed"))
    sweep = Sweep("LIF", Grid(I=np.linspace(1.2, 3.0, 6)), input="I", dt=1e-3, duration=0.02,
                  measures=("rate", kill_worker_once))
    out = tmp_path / "run"
    with pytest.warns(SweepWarning, match="chunk lost: BrokenProcessPool"):
        ds = run_sweep(sweep, out=out, executor="process", workers=1, chunk_size=2,
                       progress=False)
    assert (tmp_path / "killed").exists() and (out / "results.nc").exists()
    assert (ds.error.values != "").any()
    resumed = run_sweep(sweep, out=out, chunk_size=2, progress=False)
    assert (resumed.error.values == "").all()
    _identical(resumed, run_sweep(sweep, chunk_size=2, progress=False))


ORPHAN = textwrap.dedent("""
    import os, signal, sys, time
    from neurosim.sweep import process_pool

    pool = process_pool(workers=1)
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "State:\tZ" not in fh.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_parent_ends_its_workers():
    proc = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == -9, proc.stderr
    worker = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _alive(worker)
    if alive:
        os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker outlived its parent"


# -- corrupt and tampered chunks -------------------------------------------------------------
def test_truncated_chunk_is_named_and_recomputed(tmp_path, capsys):
    cfg = _config(tmp_path, BASE.replace("I = [1.5, 2.0]", "I = [1.2, 1.5, 2.0, 2.5, 3.0]")
                  + "\n[run]\nchunk_size = 2\n")
    assert cli_main([str(cfg), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "s_sweep"
    first = load_results(out)
    victim = sorted((out / "chunks").glob("rows-*.npz"))[1]
    victim.write_bytes(victim.read_bytes()[:100])
    assert cli_main([str(cfg), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"chunk file '{victim}' is discarded and its rows 2:4 are computed again" in \
           captured.err
    assert "computed 1 chunks, reused 2" in captured.out
    assert victim.with_name(victim.name + ".bad").exists()
    _identical(first, load_results(out))


def test_tampered_chunk_is_detected_by_its_checksum_and_recomputed(tmp_path):
    sweep = _sweep()
    out = tmp_path / "run"
    first = run_sweep(sweep, out=out, chunk_size=4, progress=False)
    victim = sorted((out / "chunks").glob("rows-*.npz"))[0]
    with np.load(victim) as z:
        arrays = dict(z)
    arrays["m_rate"] = arrays["m_rate"] * 0 + 123.0  # a well-formed file with other values
    with victim.open("wb") as fh:
        np.savez(fh, **arrays)
    with pytest.warns(ChunkFileWarning, match=r"rows-000000000-000000004.npz' is discarded.*"
                                              r"SHA-256 differs from the manifest"):
        resumed = run_sweep(sweep, out=out, chunk_size=4, progress=False)
    assert resumed.attrs["chunks_computed"] == 1 and 123.0 not in resumed.rate.values
    _identical(first, resumed)


def test_chunk_without_a_manifest_entry_is_recomputed(tmp_path):
    sweep = _sweep()
    out = tmp_path / "run"
    run_sweep(sweep, out=out, chunk_size=6, progress=False)
    lines = (out / "chunks" / "manifest.jsonl").read_text().splitlines()
    (out / "chunks" / "manifest.jsonl").write_text(lines[0] + "\n" + lines[1][:20])  # torn
    with pytest.warns(ChunkFileWarning, match="no checksum in the manifest"):
        resumed = run_sweep(sweep, out=out, chunk_size=6, progress=False)
    assert resumed.attrs["chunks_loaded"] == 1 and resumed.attrs["chunks_computed"] == 1
    # a folder without any manifest (written before checksums): every chunk is recomputed,
    # reported in one warning
    (out / "chunks" / "manifest.jsonl").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = run_sweep(sweep, out=out, chunk_size=6, progress=False)
    found = [w for w in caught if issubclass(w.category, ChunkFileWarning)]
    assert len(found) == 1 and str(found[0].message).count("no checksum") == 2
    assert again.attrs["chunks_computed"] == 2
    _identical(again, resumed)


def test_run_chunk_is_unchanged_for_valid_sets():
    sweep = _sweep()
    chunk = run_chunk(sweep, 0, 12)
    assert (chunk.error == "").all() and chunk.data["rate"].shape == (12,)


def test_automatic_chunks_are_balanced_across_workers():
    """Issue 17: 2840 sets on 2 workers were split 2234 + 606 (mostly serial)."""
    from neurosim.sweep._run import balanced_chunk_size

    size = balanced_chunk_size(2840, 2234, 2)
    assert size == 710  # four chunks of 710: two per worker
    for n, largest, workers in [(2840, 2234, 2), (10, 3, 4), (1, 100, 8), (1000, 1000, 1),
                                (999, 250, 3)]:
        size = balanced_chunk_size(n, largest, workers)
        chunks = -(-n // size)
        assert 1 <= size <= largest
        assert n - (chunks - 1) * size >= size - chunks  # the last chunk is not a remnant
        if workers > 1 and n >= 2 * workers:
            assert chunks >= 2 * workers


def test_sweep_command_prints_a_stability_warning_once_per_configuration(tmp_path, capsys):
    """Six chunks of the same unstable configuration (Euler at dt = 3 tau_mem): the
    StabilityWarning of every chunk is printed once."""
    config = tmp_path / "unstable.toml"
    config.write_text(textwrap.dedent("""
        model = "LIF"
        input = "I"
        dt = 3e-3
        duration = 0.03
        method = "euler"

        [base]
        tau_mem = 1e-3

        [grid]
        I = { start = 0.1, stop = 0.6, num = 6 }

        [run]
        out = "unstable_out"
        chunk_size = 1
    """))
    assert cli_main([str(config), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "computed 6 chunks" in captured.out
    assert captured.err.count("beyond its stability limit") == 1
