"""NIR export/import: exact round trips, NIR's own reading, and graphs from snntorch and norse."""

from __future__ import annotations

import builtins
import json
import warnings

import numpy as np
import pytest
import torch

import neurosim
from neurosim.nn import IFLayer, LIFCell, LIFLayer, LILayer

nir = pytest.importorskip("nir")
from neurosim.nir import Sequential, export_nir, import_nir  # noqa: E402


def _net():
    torch.manual_seed(0)
    net = Sequential(
        torch.nn.Linear(3, 5),
        LIFLayer(5, tau_mem=10e-3, tau_syn=5e-3, reset="subtract", t_ref=2e-3, dt=1e-3,
                 surrogate="atan"),
        torch.nn.Linear(5, 4, bias=False),
        LIFLayer(4, tau_mem=torch.rand(4) * 0.02 + 0.01, recurrent=True, dt=1e-3),
        torch.nn.Linear(4, 4),
        IFLayer(4, tau_mem=5e-3, r=2.0, dt=1e-3, method="euler"),
        torch.nn.Linear(4, 2),
        LILayer(2, tau_mem=20e-3, tau_syn=4e-3, dt=1e-3, learn=("tau_mem",)),
    )
    with torch.no_grad():  # excitatory weights: every layer spikes in the tests
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.abs_().mul_(4.0)
    return net


def _same_modules(a, b):
    assert len(a) == len(b)
    for ma, mb in zip(a, b, strict=True):
        assert type(ma) is type(mb)
        if isinstance(ma, torch.nn.Linear):
            assert torch.equal(ma.weight, mb.weight)
            assert (ma.bias is None) == (mb.bias is None)
            if ma.bias is not None:
                assert torch.equal(ma.bias, mb.bias)
            continue
        assert ma.dt == mb.dt and ma.integrator.name == mb.integrator.name
        assert ma.learn == mb.learn and ma.recurrent == mb.recurrent
        assert ma.surrogate == mb.surrogate
        pa, pb = ma.parameter_values(), mb.parameter_values()
        assert pa.keys() == pb.keys()
        for k in pa:
            if isinstance(pa[k], torch.Tensor):
                assert torch.allclose(pa[k], pb[k], rtol=1e-6, atol=0), k
            else:
                assert type(pa[k]) is type(pb[k]) and pa[k] == pb[k], k
        if ma.recurrent:
            assert torch.equal(ma.recurrent_matrix(), mb.recurrent_matrix())


def test_round_trip_through_a_file_is_exact(tmp_path):
    net = _net()
    with pytest.warns(UserWarning, match=r"reset='subtract', t_ref > 0 cannot be expressed"):
        graph = export_nir(net)
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    back = import_nir(path)  # dt and methods from the metadata
    _same_modules(net, back)
    x = torch.rand(40, 2, 3) * 4
    with torch.no_grad():
        outs_a, outs_b = net.outputs(x), back.outputs(x)
    assert outs_a[1].sum() > 0 and outs_a[3].sum() > 0 and outs_a[5].sum() > 0
    for a, b in zip(outs_a, outs_b, strict=True):
        assert torch.equal(a, b)
    # and export again: the same graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = export_nir(back)
    assert again.edges == graph.edges
    for name, node in graph.nodes.items():
        assert type(again.nodes[name]) is type(node)


def test_graph_structure_and_nir_fields():
    graph = export_nir(_net(), warn=False)
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert kinds == {"input": "Input", "0": "Affine", "1": "CubaLIF", "2": "Linear", "3": "LIF",
                     "3.w_rec": "Linear", "4": "Affine", "5": "IF", "6": "Affine",
                     "7": "CubaLI", "output": "Output"}
    assert ("3", "3.w_rec") in graph.edges and ("3.w_rec", "3") in graph.edges
    meta = json.loads(graph.metadata["neurosim"])
    assert meta["dt"] == 1e-3 and meta["method"] is None  # exact and euler are mixed
    cuba = graph.nodes["1"]
    np.testing.assert_allclose(cuba.tau_mem, 10e-3)
    np.testing.assert_allclose(cuba.tau_syn, 5e-3)
    np.testing.assert_allclose(cuba.w_in, 5e-3 / 1e-3)  # jump input: w_in = tau_syn/dt
    np.testing.assert_allclose(graph.nodes["5"].r, 2.0 / 5e-3)  # IF: dv/dt = (r/tau) I
    w = graph.nodes["3.w_rec"].weight
    assert w.shape == (4, 4) and np.all(np.diag(w) == 0)  # autapses masked
    assert graph.nodes["input"].input_type["input"].tolist() == [3]
    assert graph.nodes["output"].output_type["output"].tolist() == [2]


def test_bare_model_and_cell_export():
    g = export_nir(neurosim.LIF(tau_mem=20e-3, v_th=0.8), dt=1e-4, size=6, method="euler")
    lif = g.nodes["0"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (6,)
    np.testing.assert_allclose(lif.v_threshold, 0.8)
    g2 = export_nir(LIFCell(3, dt=1e-3))
    assert isinstance(g2.nodes["0"], nir.LIF)
    with pytest.raises(ValueError, match="size is required"):
        export_nir(neurosim.LIF(), dt=1e-3)
    with pytest.raises(ValueError, match="dt is required"):
        export_nir(neurosim.LIF(), size=3)
    with pytest.raises(ValueError, match="NIR has no node for ALIF"):
        export_nir(neurosim.ALIF(), dt=1e-3, size=3)
    with pytest.raises(ValueError, match="dt=0.01 differs from the dt=0.001"):
        export_nir(LIFLayer(3, dt=1e-3), dt=1e-2)


def test_nir_reading_without_metadata_reproduces_the_model():
    """A graph stripped of neurosim metadata is read by NIR's definition: same spikes."""
    torch.manual_seed(3)
    net = Sequential(torch.nn.Linear(4, 6),
                     LIFLayer(6, tau_mem=15e-3, tau_syn=5e-3, input_mode="current",
                              v_leak=0.1, v_reset=-0.2, dt=1e-3),
                     torch.nn.Linear(6, 3),
                     LIFLayer(3, tau_mem=torch.tensor([10e-3, 20e-3, 30e-3]), r=1.5, dt=1e-3),
                     torch.nn.Linear(3, 2),
                     IFLayer(2, tau_mem=8e-3, r=0.5, v_reset=-0.1, dt=1e-3))
    with torch.no_grad():
        net[0].weight.abs_()
        net[2].weight.abs_().mul_(4.0)
        net[4].weight.abs_().mul_(4.0)
    graph = export_nir(net)
    for node in graph.nodes.values():
        node.metadata = {}
    back = import_nir(graph, dt=1e-3)
    assert back[1].tau_mem == pytest.approx(15e-3) and back[1].input_mode == "current"
    x = torch.rand(60, 2, 4) * 10
    with torch.no_grad():
        a, b = net.outputs(x), back.outputs(x)
    assert a[1].sum() > 10 and a[3].sum() > 5 and a[5].sum() > 5
    assert back[5].tau_mem == 1.0 and back[5].r == pytest.approx(0.5 / 8e-3)  # NIR IF: dv/dt = R I
    for k in (1, 3, 5):
        assert torch.equal(a[k], b[k]), k


def test_cuba_w_in_folds_into_r():
    node = nir.CubaLIF(tau_syn=np.full(2, 5e-3), tau_mem=np.full(2, 20e-3), r=np.full(2, 2.0),
                       v_leak=np.zeros(2), v_threshold=np.ones(2), w_in=np.array([3.0, 0.5]))
    graph = nir.NIRGraph.from_list(node)
    cur = import_nir(graph, dt=1e-4)[0]
    torch.testing.assert_close(cur.r, torch.tensor([6.0, 1.0]))
    assert cur.input_mode == "current"
    jump = import_nir(graph, dt=1e-4, input_mode="jump")[0]
    torch.testing.assert_close(jump.r, torch.tensor([6.0, 1.0]) * 1e-4 / 5e-3)
    assert jump.input_mode == "jump"
    with pytest.raises(ValueError, match="input_mode must be None, 'current' or 'jump'"):
        import_nir(graph, dt=1e-4, input_mode="spike")


def test_import_errors_name_the_node():
    g = nir.NIRGraph.from_list(nir.Threshold(threshold=np.ones(3)))
    with pytest.raises(ValueError, match=r"node 'threshold': NIR Threshold nodes are not"):
        import_nir(g, dt=1e-3)
    g = nir.NIRGraph.from_list(nir.LIF(tau=np.ones(2) * 1e-2, r=np.ones(2), v_leak=np.zeros(2),
                                       v_threshold=np.ones(2)))
    with pytest.raises(ValueError, match="dt is required"):
        import_nir(g)
    bad = nir.NIRGraph.from_list(nir.LIF(tau=-np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                         v_threshold=np.ones(2)))
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\): tau_mem"):
        import_nir(bad, dt=1e-3)


def test_missing_nir_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "nir":
            raise ImportError("No module named 'nir'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r'pip install "neurosim\[nir\]"'):
        export_nir(neurosim.LIF(), dt=1e-3, size=2)


# -- graphs written by snntorch -----------------------------------------------------------
def _snntorch_net(kind, n_in=5, n_h=8, n_o=3):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")  # snntorch's exporter is built on it
    torch.manual_seed(1)
    opts = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    if kind == "Leaky":
        l1 = snn.Leaky(beta=torch.rand(n_h) * 0.3 + 0.6, threshold=torch.ones(n_h), **opts)
    elif kind == "Synaptic":
        l1 = snn.Synaptic(alpha=torch.full((n_h,), 0.7), beta=torch.rand(n_h) * 0.3 + 0.6,
                          threshold=torch.ones(n_h), **opts)
    else:
        l1 = snn.RLeaky(beta=torch.rand(n_h) * 0.3 + 0.6, threshold=torch.ones(n_h),
                        linear_features=n_h, **opts)
    l2 = snn.Leaky(beta=torch.full((n_o,), 0.8), threshold=torch.ones(n_o), output=True, **opts)
    net = torch.nn.Sequential(torch.nn.Linear(n_in, n_h), l1, torch.nn.Linear(n_h, n_o), l2)
    with torch.no_grad():
        net[0].weight.abs_()
        net[2].weight.abs_().mul_(0.6 if kind != "Synaptic" else 0.4)
    return net


def _run_snntorch(net, x):
    import snntorch.utils

    snntorch.utils.reset(net)
    outs = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            outs.append(net(x[t])[0])
    return torch.stack(outs)


@pytest.mark.parametrize("kind, input_mode, expected", [
    ("Leaky", None, "LIF"), ("Synaptic", "jump", "CubaLIF"), ("RLeaky", None, "LIF")])
def test_snntorch_graphs_reproduce_snntorch_spikes(kind, input_mode, expected):
    net = _snntorch_net(kind)
    from snntorch.export_nir import export_to_nir

    graph = export_to_nir(net, torch.randn(5))
    assert type(graph.nodes["1" if kind != "RLeaky" else "1.lif"]).__name__ == expected
    x = torch.rand(60, 4, 5) * 3
    ref = _run_snntorch(net, x)
    # snntorch writes tau = dt/(1 - beta) with its exporter's dt = 1e-4 s, r = tau/dt:
    # forward Euler at that dt gives back U <- beta U + X
    mod = import_nir(graph, dt=1e-4, method="euler", input_mode=input_mode)
    with torch.no_grad():
        got = mod(x)
    assert 0.05 * ref.numel() < ref.sum() < 0.95 * ref.numel()
    assert torch.equal(got, ref)
    # the exact propagator is another discretisation of the same ODE: other spikes
    exact = import_nir(graph, dt=1e-4, input_mode=input_mode)
    with torch.no_grad():
        assert not torch.equal(exact(x), ref)
    if kind == "RLeaky":
        assert mod[2].recurrent and isinstance(mod[1], neurosim.nir.Shift)
        # the recurrent Affine's bias travels as an identity Affine: same network again
        again = import_nir(export_nir(mod))
        with torch.no_grad():
            assert torch.equal(again(x), ref)


def test_snntorch_default_leaky_needs_the_subtractive_delayed_reset():
    """snntorch writes v_reset = 0 for every Leaky; its default resets by subtraction, late."""
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6),
                              snn.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6),
                                        init_hidden=True, output=True))  # subtract, delayed
    with torch.no_grad():
        net[0].weight.abs_()
    graph = export_to_nir(net, torch.randn(5))
    np.testing.assert_array_equal(graph.nodes["1"].v_reset, 0.0)
    x = torch.rand(80, 3, 5) * 2
    ref = _run_snntorch(net, x)
    assert ref.sum() > 20
    with torch.no_grad():
        as_written = import_nir(graph, dt=1e-4, method="euler")(x)
        default = import_nir(graph, dt=1e-4, method="euler",
                             layer_kwargs={"reset": "subtract", "reset_delay": "end"})(x)
    assert not torch.equal(as_written, ref)
    assert torch.equal(default, ref)


# -- graphs written by norse --------------------------------------------------------------
def _fix_norse_tau(graph, dt):
    """norse 1.1.0 writes tau = dt/tau_inv (s²) and w_in = 1 for its jump input."""
    for node in graph.nodes.values():
        for field in ("tau", "tau_mem", "tau_syn"):
            if hasattr(node, field):
                setattr(node, field, np.asarray(getattr(node, field)) / dt)
        if isinstance(node, nir.CubaLIF):
            node.w_in = np.asarray(node.tau_syn) / dt


@pytest.mark.parametrize("cell, input_mode, expected", [
    ("LIFBoxCell", None, "LIF"), ("LIFCell", "jump", "CubaLIF")])
def test_norse_graphs_reproduce_norse_spikes(cell, input_mode, expected):
    norse = pytest.importorskip("norse.torch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(2)
    dt = 1e-3
    make = getattr(norse, cell)
    net = norse.SequentialState(torch.nn.Linear(5, 8), make(), torch.nn.Linear(8, 3), make())
    with torch.no_grad():
        net[0].weight.abs_()
        net[2].weight.abs_()
    graph = norse.to_nir(net, torch.randn(1, 5), dt=dt)
    assert type(graph.nodes["1"]).__name__ == expected
    # norse 1.1.0's exporter divides dt by tau_mem_inv: tau comes out as dt·tau (1e-5 s)
    assert float(np.asarray(graph.nodes["1"].tau if expected == "LIF"
                            else graph.nodes["1"].tau_mem)) == pytest.approx(1e-5)
    x = torch.rand(80, 4, 5) * (6 if cell == "LIFCell" else 30)
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = net(x[t], state)
            outs.append(out)
    ref = torch.stack(outs)
    _fix_norse_tau(graph, dt)
    mod = import_nir(graph, dt=dt, method="euler", input_mode=input_mode)
    with torch.no_grad():
        got = mod(x)
    assert 20 <= ref.sum() < 0.95 * ref.numel()
    assert torch.equal(got, ref)
