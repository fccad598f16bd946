"""Non-spiking reference for the mnist_mlp real-data check: a 784-H-10 ReLU MLP with the same
dropout (0.2 input, 0.5 hidden), Adam + cosine, batch 64, on the same 5000/1000 MNIST split.

Shows how far a conventional MLP gets on 5000 training digits (the ceiling the spiking MLP is
compared against). Plain torch, one thread; about 5 min per configuration on an idle core.

Usage: python scripts/ann_mlp_reference.py [path/to/mnist_6k.npz]
"""

import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
d = np.load(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SNNRUN_MNIST_NPZ", "mnist_6k.npz"))
xtr = torch.tensor(d["x_train"], dtype=torch.float32) / 255
ytr = torch.tensor(d["y_train"]).long()
xte = torch.tensor(d["x_test"], dtype=torch.float32) / 255
yte = torch.tensor(d["y_test"]).long()


def shift(x, k=2):
    """Random whole-pixel translation in [-k, k] per image, zero-filled."""
    batch = x.shape[0]
    p = torch.nn.functional.pad(x, (k, k, k, k))
    dx = torch.randint(0, 2 * k + 1, (batch,))
    dy = torch.randint(0, 2 * k + 1, (batch,))
    out = torch.empty_like(x)
    for i in range(batch):
        out[i] = p[i, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
    return out


def run(hidden=800, p_in=0.2, p_h=0.5, epochs=30, lr=1e-3, aug=0, seed=0, wd=0.0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(p_in), torch.nn.Linear(784, hidden), torch.nn.ReLU(),
                            torch.nn.Dropout(p_h), torch.nn.Linear(hidden, 10))
    opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        m.train()
        perm = torch.randperm(5000)
        for i in range(0, 5000, 64):
            idx = perm[i:i + 64]
            x = xtr[idx]
            if aug:
                x = shift(x, aug)
            loss = torch.nn.functional.cross_entropy(m(x), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    m.eval()
    with torch.no_grad():
        return (m(xte).argmax(1) == yte).float().mean().item()


t = time.time()
for kw in [dict(), dict(aug=2), dict(hidden=1600)]:
    print(kw, f"test accuracy {run(**kw):.3f}", f"{time.time() - t:.0f}s", flush=True)
