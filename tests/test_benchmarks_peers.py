"""benchmarks/peers: the driver that runs Brian2 / NEST in their own venv (no peers needed)."""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCH)

import peers  # noqa: E402
from peers import _common  # noqa: E402


def test_run_peer_without_python_returns_none_with_reason(capsys):
    assert peers.run_peer(None, "brian2_cases.py", {"case": "cuba"}) is None
    out = capsys.readouterr().out
    assert "brian2 cuba" in out and "skipped" in out and "--brian2-python" in out


def test_run_peer_with_missing_python_returns_none_with_reason(tmp_path, capsys):
    missing = str(tmp_path / "no-venv" / "bin" / "python")
    assert peers.run_peer(missing, "nest_cases.py", {"case": "coba"}) is None
    out = capsys.readouterr().out
    assert "skipped" in out and missing in out


def test_run_peer_with_missing_script_returns_none(capsys):
    assert peers.run_peer(sys.executable, "no_such_cases.py", {"case": "cuba"}) is None
    assert "no script" in capsys.readouterr().out


def test_run_peer_round_trip(tmp_path):
    """The case goes in as JSON on stdin, the RESULT line comes back as a dict."""
    script = tmp_path / "echo_cases.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {BENCH + '/peers'!r})
        from _common import emit, parse_case
        case = parse_case()
        print("some log line")
        emit({{"ok": True, "run_s": 0.5, "echo": case}})
    """))
    res = peers.run_peer(sys.executable, str(script), {"case": "lif_poisson", "n": 7})
    assert res is not None
    assert res["run_s"] == 0.5
    assert res["echo"]["n"] == 7 and res["echo"]["dt"] == 1e-4  # defaults filled in
    assert res["wall_s"] > 0
    assert res["process_maxrss_mib"] > 0


def test_run_peer_failure_and_timeout(tmp_path, capsys):
    bad = tmp_path / "bad_cases.py"
    bad.write_text("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    assert peers.run_peer(sys.executable, str(bad), {"case": "cuba"}) is None
    assert "boom" in capsys.readouterr().out
    refused = tmp_path / "refuse_cases.py"
    refused.write_text('print("RESULT " + \'{"ok": false, "error": "not here"}\')\n')
    assert peers.run_peer(sys.executable, str(refused), {"case": "cuba"}) is None
    assert "not here" in capsys.readouterr().out
    slow = tmp_path / "slow_cases.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    assert peers.run_peer(sys.executable, str(slow), {"case": "cuba"}, timeout=1) is None
    assert "timed out" in capsys.readouterr().out


def test_parse_case_from_argv_and_stdin():
    case = _common.parse_case(['{"case": "adex_population", "n": 100, "method": "rk4"}'])
    assert case["n"] == 100 and case["method"] == "rk4"
    assert case["duration"] == 1.0 and case["repeats"] == 1 and case["threads"] == 1
    case = _common.parse_case(["-"], stdin=io.StringIO(json.dumps({"case": "cuba",
                                                                    "dt": "1e-4"})))
    assert case["case"] == "cuba" and case["dt"] == 1e-4
    case = _common.parse_case([], stdin=io.StringIO('{"case": "coba", "seed": 3}'))
    assert case["seed"] == 3


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"n": 3}', "must be one of"),
    ('{"case": "hh"}', "must be one of"),
    ('{"case": "cuba", "dt": -1}', "dt"),
    ('{"case": "cuba", "duration": 0}', "duration"),
    ('{"case": "cuba", "repeats": 0}', "repeats"),
    ('{"case": "cuba", "n": 0}', "'n'"),
])
def test_parse_case_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        _common.parse_case([text])


def test_parse_result():
    assert peers.parse_result('log\nRESULT {"ok": true, "x": 1}\nbye\n') == {"ok": True, "x": 1}
    assert peers.parse_result('log\n{"rate_hz": 3.5}\n') == {"rate_hz": 3.5}
    with pytest.raises(ValueError):
        peers.parse_result("no result here\n")


def test_spike_stats():
    # neuron 0 regular (CV 0), neuron 1 ISIs 1 and 3 (CV 0.5), neuron 2 two spikes only
    i = [0, 0, 0, 0, 1, 1, 1, 2, 2]
    t = [0.0, 0.1, 0.2, 0.3, 0.0, 0.1, 0.4, 0.0, 0.5]
    st = _common.spike_stats(i, t, n=4, duration=1.0)
    assert st["spikes"] == 9 and st["rate_hz"] == pytest.approx(9 / 4)
    assert st["cv_neurons"] == 2
    assert st["cv_isi"] == pytest.approx((0.0 + 0.5) / 2)
    assert _common.spike_stats([], [], n=3, duration=1.0)["cv_isi"] is None


def test_network_neurosim_column(tmp_path, monkeypatch, capsys):
    """benchmarks/network.py reads neurosim's examples/<case>.py --json, or says why not."""
    import network

    monkeypatch.setattr(network, "neurosim_available", lambda: "networks not available yet")
    assert network.run_neurosim("cuba", 4000, 0.1, 0, timeout=60) is None
    assert "neurosim: networks not available yet" in capsys.readouterr().out

    monkeypatch.setattr(network, "neurosim_available", lambda: None)
    monkeypatch.setattr(network, "ROOT", str(tmp_path))
    assert network.run_neurosim("cuba", 4000, 0.1, 0, timeout=60) is None
    assert "examples/cuba.py not found" in capsys.readouterr().out
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "cuba.py").write_text(textwrap.dedent("""
        import argparse, json
        p = argparse.ArgumentParser()
        p.add_argument("--duration", type=float)
        p.add_argument("--json", action="store_true")
        p.add_argument("--seed", type=int, default=0)
        a = p.parse_args()
        print("building...")
        print(json.dumps({"rate_hz": 5.0 + a.seed, "cv_isi": 0.3, "run_s": a.duration,
                          "setup_s": 0.01}))
    """))
    res = network.run_neurosim("cuba", 4000, 0.25, 2, timeout=60)
    assert res["rate_hz"] == 7.0 and res["run_s"] == 0.25 and res["process_maxrss_mib"] > 0
    # no --n-neurons option in the example: the scale runs are skipped with a reason
    assert network.run_neurosim("cuba", 40000, 0.25, 2, timeout=60) is None
    assert "--n-neurons" in capsys.readouterr().out
