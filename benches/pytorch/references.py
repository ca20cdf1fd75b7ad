"""PyTorch eager references of unet-core's Wave-U-Net (`WaveUNetConfig`, context mode, no norm)
and 3D U-Net (`UNet3dConfig`, dense convolutions), with the same state-dict names, so the
weights of a unet-rs VarStore saved as safetensors load with `load_state_dict(strict=True)`.

Used by `benches/pytorch/worker.py` (the PyTorch side of `cargo xtask bench-vs-pytorch`); the
Algorithm 1 U-Net is `benches/pytorch/algorithm1.py`, the diffusers models are diffusers' own.
Written as a PyTorch user would write them: in-place activations, plain `nn` modules.
"""
import torch
import torch.nn.functional as F
from torch import nn


class WaveUNet(nn.Module):
    """Stoller et al. 2018 Wave-U-Net ("context": valid convolutions, crop-and-concat), as
    `crates/unet-core/src/arch/wave_unet.rs`: `down.{i}.0`, `bottleneck.0`, `up.{i}.0`,
    `output`."""

    def __init__(self, in_channels=1, out_channels=1, levels=12, filters_per_level=24,
                 down_kernel=15, up_kernel=5, slope=0.2):
        super().__init__()
        width = lambda i: filters_per_level * (i + 1)
        self.levels = levels
        self.slope = slope
        self.down = nn.ModuleList(
            nn.ModuleList([nn.Conv1d(in_channels if i == 0 else width(i - 1), width(i), down_kernel)])
            for i in range(levels))
        self.bottleneck = nn.ModuleList([nn.Conv1d(width(levels - 1), width(levels), down_kernel)])
        self.up = nn.ModuleList(
            nn.ModuleList([nn.Conv1d(width(i + 1) + width(i), width(i), up_kernel)])
            for i in range(levels))
        self.output = nn.Conv1d(filters_per_level + in_channels, out_channels, 1)

    @staticmethod
    def crop(t, n):
        start = (t.shape[-1] - n) // 2
        return t[..., start:start + n]

    def forward(self, x):
        skips = []
        h = x
        for (conv,) in self.down:
            f = F.leaky_relu(conv(h), self.slope, inplace=True)
            skips.append(f)
            h = f[..., ::2]
        h = F.leaky_relu(self.bottleneck[0](h), self.slope, inplace=True)
        for i in reversed(range(self.levels)):
            u = F.interpolate(h, size=2 * h.shape[-1] - 1, mode="linear", align_corners=True)
            skip = self.crop(skips[i], u.shape[-1])
            h = F.leaky_relu(self.up[i][0](torch.cat([u, skip], 1)), self.slope, inplace=True)
        return torch.tanh(self.output(torch.cat([self.crop(x, h.shape[-1]), h], 1)))


class Unit3d(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        # Caffe's BatchNorm without Scale: gamma = 1 and beta = 0, stored but frozen (as
        # unet-core's `NormLayer::batch_without_affine`).
        self.bn = nn.BatchNorm3d(cout)
        self.bn.weight.requires_grad_(False)
        self.bn.bias.requires_grad_(False)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class UNet3d(nn.Module):
    """Çiçek et al. 2016 3D U-Net as `crates/unet-core/src/arch/unet3d.rs` (Caffe-style batch
    norm without affine parameters, bias-free 2x up-convolutions keeping the channels)."""

    def __init__(self, in_channels=3, out_channels=3, base=32, depth=3):
        super().__init__()
        self.depth = depth
        down, cin = [], in_channels
        for level in range(depth + 1):
            c = base << level
            down.append(nn.ModuleList([Unit3d(cin, c), Unit3d(c, 2 * c)]))
            cin = 2 * c
        self.down = nn.ModuleList(down)
        up = {}
        for level in reversed(range(depth)):
            c = base << level
            m = nn.Module()
            m.upconv = nn.ConvTranspose3d(cin, cin, 2, stride=2, bias=False)
            m.add_module("0", Unit3d(cin + 2 * c, 2 * c))
            m.add_module("1", Unit3d(2 * c, 2 * c))
            up[str(level)] = m
            cin = 2 * c
        self.up = nn.ModuleDict(up)
        self.head = nn.Conv3d(cin, out_channels, 1)

    def forward(self, x):
        skips = []
        h = x
        for level, (a, b) in enumerate(self.down):
            if level > 0:
                h = F.max_pool3d(h, 2)
            h = b(a(h))
            skips.append(h)
        skips.pop()
        for level in reversed(range(self.depth)):
            m = self.up[str(level)]
            u = m.upconv(h)
            h = getattr(m, "1")(getattr(m, "0")(torch.cat([u, skips.pop()], 1)))
        return self.head(h)
