"""PyTorch eager reference of the survey's Algorithm 1 U-Net, the same layers and names as
unet-core's `UNetConfig::algorithm1(2, base, depth)` (milesial/Pytorch-UNet layout, BN, no conv
bias, 2x2 max-pool, 2x2 transposed conv, concat skips).

Run with the xtask venv:
    ~/.cache/unet-rs/torch-2.11.0/bin/python benches/pytorch/algorithm1.py [--threads N]
Prints the parameter count and the median forward / train-step time at 4x1x128x128, base 32.
"""
import argparse
import statistics
import time

import torch
from torch import nn


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = DoubleConv(2 * cout, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, cin=1, cout=1, base=32, depth=4):
        super().__init__()
        ch = [base << i for i in range(depth + 1)]
        self.inc = DoubleConv(cin, ch[0])
        for i in range(1, depth + 1):
            setattr(self, f"down{i}", Down(ch[i - 1], ch[i]))
        for k, level in enumerate(reversed(range(depth))):
            setattr(self, f"up{k + 1}", Up(ch[level + 1], ch[level]))
        self.outc = OutConv(ch[0], cout)
        self.depth = depth

    def forward(self, x):
        skips = []
        h = self.inc(x)
        for i in range(1, self.depth + 1):
            skips.append(h)
            h = getattr(self, f"down{i}")(h)
        for k in range(1, self.depth + 1):
            h = getattr(self, f"up{k}")(h, skips.pop())
        return self.outc(h)


def timeit(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = UNet()
    x = torch.randn(4, 1, 128, 128)
    y = torch.randn(4, 1, 128, 128)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    params = sum(p.numel() for p in net.parameters())

    def fwd():
        net.eval()
        with torch.no_grad():
            net(x)

    def step():
        net.train()
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()

    print(f"params {params}")
    print(f"threads {torch.get_num_threads()}")
    print(f"forward_eval_ms {timeit(fwd, args.reps) * 1e3:.1f}")
    print(f"train_step_ms {timeit(step, args.reps) * 1e3:.1f}")


if __name__ == "__main__":
    main()
