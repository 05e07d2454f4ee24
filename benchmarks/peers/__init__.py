"""Run the peer simulators (Brian2, NEST) from their own Python, one case per subprocess.

Brian2 2.9 needs numpy < 2.4 and NEST brings its own binaries, so they live in a
separate virtual environment (docs/performance.md, "Peers in their own venv"); the
benchmark scripts of neurosim call them through :func:`run_peer`::

    from peers import run_peer
    res = run_peer("/work/peers/bin/python", "brian2_cases.py",
                   {"case": "cuba", "mode": "standalone", "duration": 1.0})
    if res is not None:
        print(res["run_s"], res["rate_hz"])

The scripts (``brian2_cases.py``, ``nest_cases.py`` beside this file) read the case
as JSON on stdin and print one line ``RESULT {json}``. Nothing here imports Brian2,
NEST or neurosim.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from ._common import CASES, DEFAULTS, parse_case

HERE = os.path.dirname(os.path.abspath(__file__))
BRIAN2 = os.path.join(HERE, "brian2_cases.py")
NEST = os.path.join(HERE, "nest_cases.py")
MEMWRAP = os.path.join(HERE, "_memwrap.py")

__all__ = ["BRIAN2", "CASES", "DEFAULTS", "NEST", "parse_case", "parse_result", "run_peer",
           "run_json_command"]


def parse_result(stdout: str) -> dict:
    """The last ``RESULT {json}`` line of a peer script's output (``ValueError`` if none).

    A plain JSON object on the last non-empty line is accepted too (examples that print
    one JSON object, e.g. ``examples/cuba.py --json``).
    """
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    if lines and lines[-1].startswith("{"):
        return json.loads(lines[-1])
    raise ValueError("no RESULT line in the output")


def _tail(text: str, n: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def run_json_command(argv: list[str], stdin_text: str = "", timeout: float = 1800.0,
                     label: str = "peer", env: dict | None = None) -> dict | None:
    """Run ``argv``, feed it ``stdin_text``, parse its JSON result (see :func:`parse_result`).

    Returns the parsed dict with ``wall_s`` (the whole subprocess) and
    ``process_maxrss_mib`` added: the peak resident memory of the command and the
    children it waited for, measured by ``_memwrap.py`` so that this process's own memory
    is not counted; or ``None`` after printing the reason (the command failed, timed out,
    or printed no result, or the result says ``ok: false``).
    """
    with tempfile.TemporaryDirectory(prefix="neurosim-peer-") as tmp:
        mem_file = os.path.join(tmp, "mem.json")
        out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        wrapped = [sys.executable, "-S", MEMWRAP, mem_file, *argv]
        t0 = time.perf_counter()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            try:
                proc = subprocess.Popen(wrapped, stdin=subprocess.PIPE, stdout=out,
                                        stderr=err, text=True, env=env,
                                        start_new_session=True)
            except OSError as exc:
                print(f"  {label}: skipped ({type(exc).__name__}: {exc})", flush=True)
                return None
            try:
                proc.stdin.write(stdin_text)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, 9)  # the script and any binary it started
                except OSError:
                    proc.kill()
                proc.wait()
                print(f"  {label}: failed (timed out after {timeout:.0f} s)", flush=True)
                return None
        wall = time.perf_counter() - t0
        with open(out_path) as fh:
            stdout = fh.read()
        with open(err_path) as fh:
            stderr = fh.read()
        mem = None
        if os.path.exists(mem_file):
            with open(mem_file) as fh:
                mem = json.load(fh).get("maxrss_mib")
    if not os.path.exists(argv[0]) and proc.returncode == 127:
        print(f"  {label}: skipped (cannot run {argv[0]!r})", flush=True)
        return None
    try:
        result = parse_result(stdout)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"  {label}: failed (exit {proc.returncode}, {exc}): "
              f"{_tail(stderr or stdout)}", flush=True)
        return None
    if not isinstance(result, dict):
        print(f"  {label}: failed (result is not a JSON object)", flush=True)
        return None
    if result.get("ok") is False or proc.returncode != 0:
        reason = result.get("error") or _tail(stderr)
        print(f"  {label}: failed (exit {proc.returncode}): {reason}", flush=True)
        return None
    result["wall_s"] = wall
    if mem is not None:
        result["process_maxrss_mib"] = mem
    return result


def run_peer(python_path: str | None, script: str, case: dict,
             timeout: float = 1800.0) -> dict | None:
    """Run a peer script with the peers' Python and return its result as a dict.

    Args:
        python_path: the peers' interpreter (e.g. ``/work/peers/bin/python``); ``None``
            or ``""`` means the peer is not available.
        script: a path, or the name of a script beside this file
            (``"brian2_cases.py"``, ``"nest_cases.py"``).
        case: the case description (see ``_common.parse_case``), sent as JSON on stdin.
        timeout: seconds before the subprocess (and what it started) is killed.

    Returns:
        The script's JSON result (``run_s``, ``compile_s``, ``setup_s``, ``spikes``,
        ``rate_hz``, ... plus ``wall_s`` and ``process_maxrss_mib``), or ``None`` with
        the reason printed when the Python path is not given or missing, or the run fails.
    """
    path = script if os.path.isabs(script) or os.path.exists(script) \
        else os.path.join(HERE, script)
    name = os.path.basename(path).replace("_cases.py", "")
    label = f"{name} {case.get('case', '?')}"
    if case.get("mode"):
        label += f" ({case['mode']})"
    if not python_path:
        print(f"  {label}: skipped (no Python given for this peer; pass "
              f"--{name}-python PATH)", flush=True)
        return None
    if not (os.path.isfile(python_path) and os.access(python_path, os.X_OK)):
        print(f"  {label}: skipped (peer Python {python_path!r} is not an executable file)",
              flush=True)
        return None
    if not os.path.isfile(path):
        print(f"  {label}: skipped (no script {path!r})", flush=True)
        return None
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peers' venv must not see this venv's packages
    env.setdefault("OMP_NUM_THREADS", str(case.get("threads", 1)))
    return run_json_command([python_path, path, "-"], json.dumps(case), timeout=timeout,
                            label=label, env=env)

