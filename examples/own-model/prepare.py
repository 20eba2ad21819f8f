"""Make this example's inputs the way your own project would have them: a trained state dict
(weights.pt) and labelled arrays (train.npz / eval.npz, from scikit-learn's bundled digits). The
model never sees eval.npz in training, so the accuracies edgec reports are honest.

    python examples/own-model/prepare.py          # ~10 s on 2 cores
"""

from pathlib import Path

import numpy as np
import torch
from net import build
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent


def main(epochs: int = 8) -> None:
    torch.manual_seed(0)
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0 - 0.3)[:, None]  # N×1×8×8, roughly centred
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    cut = int(0.7 * len(x))
    x, y, ex, ey = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
    np.savez(HERE / "train.npz", x=x, y=y)
    np.savez(HERE / "eval.npz", x=ex, y=ey)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    torch.save(model.state_dict(), HERE / "weights.pt")
    print(f"wrote train.npz, eval.npz and weights.pt in {HERE}")


if __name__ == "__main__":
    main()
