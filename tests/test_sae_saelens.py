"""Compatibility with SAELens itself, both ways.

- SAEs written by sae-lens 6.54.12 (tests/data/saelens_*; see saelens_README.txt there) load
  here and encode/decode exactly as SAELens did (its outputs are stored beside them).
- Our SAEs load in SAELens and encode there as here: needs a Python with the ``sae-lens``
  package, named by ``STEVE_QT_SAELENS_PYTHON`` (sae-lens pulls transformer-lens, datasets,
  wandb, pandas, pyarrow, ... about 1.9 GB, so it is not a test extra of this project; make one
  with ``python3.11 -m venv V && V/bin/pip install -c <(echo torch==2.13.0) torch==2.13.0
  sae-lens``). Skipped, with that reason, when it is not set.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from steve_qt.core.features.sae import load_sae, save_sae

DATA = Path(__file__).parent / "data"
CHECK = Path(__file__).parent / "saelens_check.py"
SAELENS_PYTHON = os.environ.get("STEVE_QT_SAELENS_PYTHON")


@pytest.mark.parametrize("arch", ["topk", "standard"])
def test_saelens_written_sae_encodes_as_saelens_did(arch):
    d = DATA / f"saelens_{arch}"
    sae = load_sae(d)
    assert (sae.architecture, sae.hook_name, sae.d_in, sae.d_sae) == \
        (arch, "encoder.blocks.1", 6, 12)
    assert sae.k == (4 if arch == "topk" else None)
    x = np.load(d / "x.npy")
    codes = sae.encode(x)
    np.testing.assert_allclose(codes, np.load(d / "codes.npy"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sae.decode(codes), np.load(d / "recon.npy"), rtol=1e-5, atol=1e-5)


def test_our_cfg_has_the_keys_saelens_writes():
    """Same keys as sae-lens 6.54.12's own cfg.json for the same architecture (values aside)."""
    import json

    for arch in ("topk", "standard"):
        theirs = json.loads((DATA / f"saelens_{arch}" / "cfg.json").read_text())
        ours = load_sae(DATA / f"saelens_{arch}").cfg_dict()
        assert set(ours) == set(theirs), arch
        assert set(theirs["metadata"]) <= set(ours["metadata"])


@pytest.mark.skipif(not SAELENS_PYTHON, reason="set STEVE_QT_SAELENS_PYTHON to a Python with "
                    "sae-lens installed (not a dependency: see this file's docstring)")
@pytest.mark.parametrize("arch", ["topk", "standard"])
def test_our_sae_loads_and_encodes_in_saelens(tmp_path, arch):
    from tests.test_sae import random_sae

    sae = random_sae(d_in=6, d_sae=10, architecture=arch, k=3, seed=5)
    save_sae(sae, tmp_path / "ours")
    x = np.random.default_rng(7).normal(size=(9, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([SAELENS_PYTHON, str(CHECK), "load", str(tmp_path / "ours"),
                    str(tmp_path / "x.npy"), str(tmp_path / "out.npz")], check=True,
                   capture_output=True, timeout=600)
    out = np.load(tmp_path / "out.npz")
    assert str(out["architecture"]) == arch and str(out["hook_name"]) == "encoder.blocks.2"
    np.testing.assert_allclose(out["codes"], sae.encode(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["recon"], sae.reconstruct(x), rtol=1e-5, atol=1e-5)
