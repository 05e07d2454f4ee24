"""model_gallery keeps the per-model doc figures with --outdir (tests/test_examples.py runs
every example, adex_firing_patterns included, in smoke mode)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # tests/test_examples.py smoke-runs the sheet; this adds the per-model figures
def test_model_gallery_smoke(tmp_path):
    module = _load("model_gallery")
    module.main(["--smoke", "--outdir", str(tmp_path / "models"),
                 "--out", str(tmp_path / "sheet.png")])
    for name in module.FIGURES:
        assert (tmp_path / "models" / f"{name}.png").stat().st_size > 3_000, name
    assert (tmp_path / "sheet.png").stat().st_size > 15_000
