"""Python eager peer of bench_vit_moe's dense step: torchvision's VisionTransformer on the same
shapes (img 32, patch 4, dim 192, depth 6, heads 3, MLP 768, 10 classes, batch 128), AdamW
(lr 1e-3, wd 0.05), fp32, random data. Prints the median train-step ms (run by bench/peer_vit.sh).
Usage: /usr/bin/python3 bench/peer_vit.py [--threads N] [--iters N] [--batch N]
"""
import argparse
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=6, num_heads=3,
                                                 hidden_dim=192, mlp_dim=768, num_classes=10)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    times, cpu = [], []
    for _ in range(a.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    times.sort()
    cpu.sort()
    print("python torchvision ViT dense fp32 train step: cpu %.1f ms, wall %.1f ms"
          % (cpu[len(cpu) // 2], times[len(times) // 2]))


if __name__ == "__main__":
    main()
