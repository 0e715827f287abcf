"""Run by tests/test_sae_saelens.py with a Python that has the ``sae-lens`` package (not the
project's venv: sae-lens pulls transformer-lens, datasets, wandb, ...).

``python saelens_check.py load OURS_DIR X.npy OUT.npy``: load our SAE with SAELens, encode X.
``python saelens_check.py write ARCH DIR``: write a random SAELens SAE of ARCH (topk|standard).
"""

import sys

import numpy as np
import torch


def main(argv):
    from sae_lens import SAE

    if argv[0] == "load":
        sae = SAE.load_from_disk(argv[1], device="cpu")
        x = torch.from_numpy(np.load(argv[2]))
        with torch.no_grad():
            codes = sae.encode(x)
            recon = sae.decode(codes)
        np.savez(argv[3], codes=codes.numpy(), recon=recon.numpy(),
                 architecture=sae.cfg.architecture(), hook_name=str(sae.cfg.metadata.hook_name),
                 k=getattr(sae.cfg, "k", -1))
    elif argv[0] == "write":
        from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
        from sae_lens.saes.sae import SAEMetadata

        meta = SAEMetadata(hook_name="encoder.blocks.1", model_name="whisper:tiny.en")
        torch.manual_seed(0)
        if argv[1] == "topk":
            sae = TopKSAE(TopKSAEConfig(d_in=6, d_sae=12, k=4, metadata=meta))
        else:
            sae = StandardSAE(StandardSAEConfig(d_in=6, d_sae=12, metadata=meta))
        with torch.no_grad():
            for p in sae.parameters():
                p.copy_(torch.randn_like(p))
        sae.save_model(argv[2])
    else:
        raise SystemExit(f"unknown command {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
