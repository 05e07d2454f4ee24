"""Every ``python`` code block of the README and the guides runs, and prints what it says.

Blocks of one file run in order in one namespace (as a reader pastes them into one
session). A line ``print(...)  # prints: <expected>`` states its output: the numbers
printed must equal the numbers of ``<expected>`` to the digits shown (half a unit of
the last digit; a number written ``0.0219...`` is truncated, so one unit), in order.
"""

from __future__ import annotations

import builtins
import re
import sys
import types
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ("README.md", "docs/getting-started.md", "docs/custom-model.md")
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXPECT = re.compile(r"print\(.*\)\s*#\s*prints:\s*(.+?)\s*$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(\.\.\.)?")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ``python`` fenced blocks of a markdown text, with the line each starts on."""
    return [(text[:m.start(1)].count("\n") + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def _numbers(text: str) -> list[tuple[float, float]]:
    """The numbers in ``text`` with the tolerance their written digits imply."""
    out = []
    for m in _NUMBER.finditer(text):
        token = m.group(0).removesuffix("...")
        mantissa = re.split(r"[eE]", token)[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        exponent = int(re.split(r"[eE]", token)[1]) if re.search(r"[eE]", token) else 0
        unit = 10.0 ** (exponent - decimals)
        out.append((float(token), unit if m.group(1) else unit / 2))
    return out


def _skeleton(text: str) -> str:
    """The text with every number replaced by ``#`` and spacing normalised."""
    text = re.sub(r"\s+", " ", _NUMBER.sub("#", text)).strip()
    return re.sub(r"([\[(]) | ([\])])", r"\1\2", text)


def check_printed(expected: str, printed: str, where: str) -> None:
    """Raise AssertionError unless ``printed`` has the numbers of ``expected`` (to the digits
    shown) and the same text around them."""
    want, got = _numbers(expected), [v for v, _ in _numbers(printed)]
    assert len(got) == len(want), f"{where}: printed {printed!r}, the docs say {expected!r}"
    assert _skeleton(printed) == _skeleton(expected), \
        f"{where}: printed {printed!r}, the docs say {expected!r}"
    for (w, tol), g in zip(want, got, strict=True):
        assert abs(g - w) <= tol * (1 + 1e-9), \
            f"{where}: printed {printed!r}, the docs say {expected!r}"


def test_number_matching_is_strict_to_the_digits_shown():
    check_printed("[0.0219723 0.0459446]", "[0.02197232 0.04594464]", "x")
    with pytest.raises(AssertionError):  # the float64 values differ in the 7th digit
        check_printed("[0.0219723 0.0459446]", "[0.02197225 0.04594449]", "x")
    check_printed("0.0219...", "0.021999", "x")
    check_printed("0.0 True", "0.0 True", "x")
    with pytest.raises(AssertionError):
        check_printed("0.0 True", "0.0 False", "x")
    with pytest.raises(AssertionError):
        check_printed("40.0", "tensor([40., 40.])", "x")  # one number stated, two printed


@pytest.mark.parametrize("name", FILES)
def test_code_blocks_run_and_print_what_they_say(name, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = ROOT / name
    text = path.read_text()
    blocks = python_blocks(text)
    assert blocks, f"{name} has no python code block"
    monkeypatch.chdir(tmp_path)  # files a block writes land in a scratch folder
    module = types.ModuleType("__docs__")  # a real module: dataclasses look their class up
    monkeypatch.setitem(sys.modules, "__docs__", module)
    namespace = module.__dict__
    printed: dict[tuple[int, int], list[str]] = {}
    real_print = builtins.print

    def recording_print(*args, **kwargs):
        frame = sys._getframe(1)
        if frame.f_code.co_filename.startswith("<docs "):
            key = (int(frame.f_code.co_filename.split()[-1].rstrip(">")), frame.f_lineno)
            printed.setdefault(key, []).append(" ".join(str(a) for a in args))
        real_print(*args, **kwargs)

    namespace["print"] = recording_print  # the blocks' own print; nothing global is patched
    n_checked = 0
    for k, (start, code) in enumerate(blocks):
        where = f"{name}, block at line {start}"
        try:
            exec(compile(code, f"<docs {k}>", "exec"), namespace)  # noqa: S102
        except Exception as err:  # pragma: no cover - the message is the point
            raise AssertionError(f"{where} raised {type(err).__name__}: {err}") from err
        for offset, line in enumerate(code.splitlines(), start=1):
            m = _EXPECT.search(line)
            if m:
                outs = printed.get((k, offset))
                assert outs, f"{where}: line {start + offset - 1} did not print"
                check_printed(m.group(1), outs[0], f"{where}, line {start + offset - 1}")
                n_checked += 1
    plt.close("all")
    if name == "README.md":
        assert n_checked >= 2  # the quick start states its spike times


def test_readme_phase_plane_shows_its_nullclines():
    """The README's phase-plane call draws nullclines inside the visible plane."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = (ROOT / "README.md").read_text()
    (line,) = [ln for ln in text.splitlines() if "plot.plot_phase_plane(" in ln]
    import neurosim
    from neurosim import plot

    fig = eval(line.strip().split("  #")[0], {"neurosim": neurosim, "plot": plot})  # noqa: S307
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for label in ("v-nullcline (dv/dt = 0)", "b-nullcline (db/dt = 0)", "threshold"):
        (ln,) = [a for a in ax.lines if a.get_label() == label]
        x, y = ln.get_xdata(), ln.get_ydata()
        inside = (x > x0 + 0.02 * (x1 - x0)) & (x < x1 - 0.02 * (x1 - x0)) & \
                 (y > y0 + 0.02 * (y1 - y0)) & (y < y1 - 0.02 * (y1 - y0))
        assert inside.sum() >= 2, f"{label} is not visible in the README's phase plane"
    plt.close("all")
