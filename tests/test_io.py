"""Save/load of a Result (the neurosim-result .npz format) and the Neo export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import neurosim
from neurosim.io import FORMAT_VERSION, load_result, read_header, save_result, to_neo


def _assert_same_model(a, b):
    assert type(a) is type(b)
    pa, pb = a.params(), b.params()
    assert pa.keys() == pb.keys()
    for k in pa:
        if isinstance(pa[k], torch.Tensor):
            assert isinstance(pb[k], torch.Tensor) and pa[k].dtype == pb[k].dtype, k
            assert torch.equal(pa[k], pb[k]), k
        else:
            assert type(pa[k]) is type(pb[k]) and pa[k] == pb[k], k


def _assert_same_result(a, b):
    assert a.t.dtype == b.t.dtype and torch.equal(a.t, b.t)
    assert sorted(a.traces) == sorted(b.traces)
    for name in a.traces:
        assert a.traces[name].dtype == b.traces[name].dtype
        assert torch.equal(a.traces[name], b.traces[name]), name
    assert b.spike_index.dtype == np.int64 and b.spike_time.dtype == np.float64
    np.testing.assert_array_equal(a.spike_index, b.spike_index)
    np.testing.assert_array_equal(a.spike_time, b.spike_time)
    assert list(a.final_state) == list(b.final_state)
    for name in a.final_state:
        assert torch.equal(a.final_state[name], b.final_state[name]), name
    _assert_same_model(a.model, b.model)
    assert a.dt == b.dt and a.method == b.method
    assert tuple(a.shape) == tuple(b.shape)
    # derived, public views agree too (spike counts per neuron, per-neuron spike times)
    assert torch.equal(a.spike_count(), b.spike_count())
    for ta, tb in zip(a.spike_times.reshape(-1), b.spike_times.reshape(-1), strict=True):
        np.testing.assert_array_equal(ta, tb)


def _heterogeneous_lif_result(dtype=torch.float64):
    torch.manual_seed(0)
    model = neurosim.LIF(tau_mem=torch.tensor([10e-3, 20e-3, 30e-3], dtype=dtype),
                         tau_syn=5e-3, v_th=torch.tensor([1.0, 0.9, 1.1], dtype=dtype),
                         t_ref=2e-3, reset="subtract", input_mode="current")
    x = 2.0 + torch.rand(400, 2, 3, dtype=dtype)
    return neurosim.simulate(model, x, dt=1e-4, record="all")


def test_round_trip_is_equal_and_continues_identically(tmp_path):
    res = _heterogeneous_lif_result()
    assert res.spike_time.size > 10
    path = tmp_path / "run.npz"
    neurosim.save(res, path)
    back = neurosim.load(path)
    _assert_same_result(res, back)
    # the loaded final state continues the run exactly like the original one
    x = 2.0 + torch.rand(100, 2, 3, dtype=torch.float64)
    a = neurosim.simulate(res.model, x, dt=1e-4, state=res.final_state)
    b = neurosim.simulate(back.model, x, dt=1e-4, state=back.final_state)
    np.testing.assert_array_equal(a.spike_time, b.spike_time)
    assert torch.equal(a.v, b.v)


@pytest.mark.parametrize("model, method, x", [
    (neurosim.LI(tau_mem=10e-3), "exact", 0.5),                       # no spikes
    (neurosim.LIF(tau_mem=10e-3, t_ref=1e-3), "euler", 2.0),         # fused, grid spikes
    (neurosim.AdEx(), "adaptive", 500.0),                              # pA, mV
    (neurosim.HodgkinHuxley(), "exponential_euler", 10.0),
    (neurosim.Izhikevich(), "euler", 10.0),
])
def test_round_trip_other_models(tmp_path, model, method, x):
    res = neurosim.simulate(model, torch.full((300, 2), x, dtype=torch.float32), dt=1e-4,
                            method=method, record="all")
    save_result(res, tmp_path / "r.npz", compress=True)
    _assert_same_result(res, load_result(tmp_path / "r.npz"))


def test_file_is_plain_npz_with_documented_keys(tmp_path):
    res = _heterogeneous_lif_result(torch.float32)
    save_result(res, tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as data:  # no pickles inside
        keys = set(data.files)
        header = json.loads(str(data["header"][()]))
        assert data["spike_index"].dtype == np.int64
        assert data["spike_time"].dtype == np.float64
        assert data["t"].dtype == np.float32 and data["t"].shape == (400,)
        assert data["trace/v"].shape == (400, 2, 3)
        np.testing.assert_array_equal(data["param/tau_mem"],
                                      np.array([10e-3, 20e-3, 30e-3], dtype=np.float32))
    assert {"header", "t", "spike_index", "spike_time", "trace/v", "trace/i", "trace/refrac",
            "final_state/v", "final_state/i", "final_state/refrac", "param/tau_mem",
            "param/v_th"} == keys
    assert header["format"] == "neurosim-result" and header["format_version"] == 1
    assert header["neurosim_version"] == neurosim.__version__
    assert header["model"]["class"] == "LIF"
    assert header["model"]["params"]["tau_syn"] == 5e-3
    assert header["model"]["params"]["reset"] == "subtract"
    assert header["model"]["params"]["tau_mem"] == {"array": "param/tau_mem"}
    assert header["dt"] == 1e-4 and header["method"] == "exact" and header["shape"] == [2, 3]
    assert read_header(tmp_path / "r.npz") == header


def _rewrite_header(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays["header"][()]))
    for key, value in changes.items():
        if key == "model_class":
            header["model"]["class"] = value
        else:
            header[key] = value
    arrays["header"] = np.array(json.dumps(header))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_newer_format_version_is_a_clear_error(tmp_path):
    path = tmp_path / "r.npz"
    save_result(_heterogeneous_lif_result(), path)
    _rewrite_header(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match=r"format_version=2 is not supported.*upgrade"):
        load_result(path)


def test_unknown_model_class_is_refused_not_imported(tmp_path):
    path = tmp_path / "r.npz"
    save_result(_heterogeneous_lif_result(), path)
    _rewrite_header(path, model_class="os.system")
    with pytest.raises(ValueError, match=r"model class 'os.system' is not a neurosim model"):
        load_result(path)


def test_not_a_result_file(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a neurosim result file"):
        load_result(path)


def test_a_user_model_subclass_cannot_be_saved(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True, eq=False)
    class MyLIF(neurosim.LIF):
        pass

    res = neurosim.simulate(MyLIF(), torch.full((10, 1), 2.0), dt=1e-3)
    with pytest.raises(ValueError, match="only neurosim's own model classes"):
        save_result(res, tmp_path / "r.npz")


# -- Neo -----------------------------------------------------------------------------------
def test_to_neo_spiketrains_and_signals_with_units():
    neo = pytest.importorskip("neo")
    pq = pytest.importorskip("quantities")
    res = _heterogeneous_lif_result()
    seg = to_neo(res)
    assert isinstance(seg, neo.Segment)
    assert len(seg.spiketrains) == 6
    per_neuron = res.spike_times.reshape(-1)
    for k, st in enumerate(seg.spiketrains):
        assert st.units == pq.s and float(st.t_start) == 0.0
        assert float(st.t_stop) == pytest.approx(400 * 1e-4)
        np.testing.assert_array_equal(st.magnitude, per_neuron[k])
        assert st.annotations["neuron"] == k
        assert st.annotations["neuron_index"] == list(np.unravel_index(k, (2, 3)))
    sigs = {s.name: s for s in seg.analogsignals}
    assert set(sigs) == {"v", "i", "refrac"}
    v = sigs["v"]
    assert v.shape == (400, 6) and v.units == pq.dimensionless
    assert float(v.sampling_period.rescale("s")) == pytest.approx(1e-4)
    assert float(v.t_start.rescale("s")) == pytest.approx(1e-4)  # state at the end of step 0
    np.testing.assert_array_equal(v.magnitude, res.v.reshape(400, 6).numpy())
    assert sigs["refrac"].units == pq.s


def test_to_neo_units_of_a_biophysical_model_and_neuron_subset():
    pq = pytest.importorskip("quantities")
    pytest.importorskip("neo")
    res = neurosim.simulate(neurosim.AdEx(), torch.full((2000, 3), 1000.0), dt=1e-4,
                            method="adaptive", record=("v", "w"))
    seg = to_neo(res, neurons=[2, 0])
    assert [st.annotations["neuron"] for st in seg.spiketrains] == [2, 0]
    assert len(seg.spiketrains[0]) > 0
    sigs = {s.name: s for s in seg.analogsignals}
    assert sigs["v"].units == pq.mV and sigs["w"].units == pq.pA
    np.testing.assert_array_equal(sigs["v"].magnitude[:, 0], res.v[:, 2].numpy())
    np.testing.assert_array_equal(sigs["v"].array_annotations["neuron"], [2, 0])
    with pytest.raises(ValueError, match="neurons: index 3 is out of range for 3 neurons"):
        to_neo(res, neurons=[3])


def test_to_neo_without_neo_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name in ("neo", "quantities"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    res = neurosim.simulate(neurosim.LIF(), torch.full((10, 1), 2.0), dt=1e-3)
    with pytest.raises(ImportError, match=r'pip install "neurosim\[neo\]"'):
        to_neo(res)
