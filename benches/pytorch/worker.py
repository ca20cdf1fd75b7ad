"""PyTorch side of `cargo xtask bench-vs-pytorch`: a long-lived worker driven by the Rust bench
binary (`benches/vs_pytorch/`) over a line protocol, one JSON object per line on stdin, one JSON
reply per line on stdout (`{"ok": true, ...}` or `{"ok": false, "error": "..."}`).

Commands:
  init      {model, weights, inputs, threads, device, autocast, lr}: build the reference
            (`model.kind`: algorithm1 | wave_unet | unet3d | diffusers), load the unet-rs
            weights with load_state_dict(strict=True), load the inputs
  flops     FLOPs of a forward and of a train step (fwd+bwd) counted by
            torch.utils.flop_counter.FlopCounterMode
  forward   {out}: eval forward without grad, the output saved to `out` (safetensors)
  train     one train step (fwd+bwd+Adam, MSE); replies the loss and the global L2 norm of
            the gradients
  time      {what: forward|train, reps}: runs `reps` times, replies the seconds of each
  rss       peak resident set size of this process (VmHWM, bytes)
  reset_rss restart the peak RSS from the current RSS (after set-up); replies that RSS
  quit

Not meant to be run by hand; see `xtask/src/bench_vs_pytorch.rs`.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def build(spec):
    kind = spec["kind"]
    if kind == "algorithm1":
        from algorithm1 import UNet
        return UNet(spec["in_channels"], spec["out_channels"], spec["base"], spec["depth"])
    if kind == "wave_unet":
        from references import WaveUNet
        return WaveUNet(spec["in_channels"], spec["out_channels"], spec["levels"],
                        spec["filters_per_level"], spec["down_kernel"], spec["up_kernel"],
                        spec["slope"])
    if kind == "unet3d":
        from references import UNet3d
        return UNet3d(spec["in_channels"], spec["out_channels"], spec["base"], spec["depth"])
    if kind == "diffusers":
        import diffusers
        cfg = spec["config"]
        return getattr(diffusers, cfg["_class_name"]).from_config(cfg)
    raise ValueError(f"unknown model kind {kind}")


def vm_status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def vm_hwm():
    return vm_status("VmHWM")


class Worker:
    def init(self, msg):
        torch.set_num_threads(msg["threads"])
        self.device = torch.device(msg["device"])
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.autocast = msg.get("autocast", False)
        spec = msg["model"]
        self.diffusers = spec["kind"] == "diffusers"
        self.model = build(spec).to(self.device)
        state = load_file(msg["weights"])
        self.model.load_state_dict(state, strict=True)
        io = {k: v.to(self.device) for k, v in load_file(msg["inputs"]).items()}
        self.x, self.y = io.pop("x"), io.pop("y")
        self.extra = io
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(trainable, lr=msg["lr"])
        params = sum(p.numel() for p in trainable)
        return {"params": params, "threads": torch.get_num_threads(),
                "torch": torch.__version__}

    def flops(self):
        """FLOPs of one forward and one fwd+bwd (called after the timing, so that neither the
        timed state nor the baseline RSS carries this extra pass)."""
        with FlopCounterMode(display=False) as fc:
            self.forward()
        flops_fwd = fc.get_total_flops()
        self.model.train()
        with FlopCounterMode(display=False) as fc:
            self.loss().backward()
        flops_train = fc.get_total_flops()
        self.opt.zero_grad(set_to_none=True)
        return {"flops_forward": flops_fwd, "flops_train": flops_train}

    def run(self, x):
        if self.diffusers:
            kw = {}
            if "encoder_hidden_states" in self.extra:
                kw["encoder_hidden_states"] = self.extra["encoder_hidden_states"]
            return self.model(x, self.extra["timestep"], **kw).sample
        return self.model(x)

    def amp(self):
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.autocast)

    def forward(self):
        self.model.eval()
        with torch.no_grad(), self.amp():
            return self.run(self.x)

    def loss(self):
        with self.amp():
            return F.mse_loss(self.run(self.x).float(), self.y)

    def train(self):
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def handle(self, msg):
        cmd = msg["cmd"]
        if cmd == "init":
            return self.init(msg)
        if cmd == "flops":
            return self.flops()
        if cmd == "forward":
            out = self.forward().float().cpu().contiguous()
            save_file({"output": out}, msg["out"])
            return {}
        if cmd == "train":
            loss = self.train().item()
            sq = sum(float(p.grad.double().square().sum()) for p in self.model.parameters()
                     if p.grad is not None)
            return {"loss": loss, "grad_norm": sq ** 0.5}
        if cmd == "time":
            fn = self.forward if msg["what"] == "forward" else self.train
            secs = []
            for _ in range(msg["reps"]):
                self.sync()
                t0 = time.perf_counter()
                fn()
                self.sync()
                secs.append(time.perf_counter() - t0)
            return {"seconds": secs}
        if cmd == "rss":
            return {"peak_rss": vm_hwm()}
        if cmd == "reset_rss":
            # Linux clear_refs 5: the peak RSS restarts from the current RSS.
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                return {"reset": True, "rss": vm_status("VmRSS")}
            except OSError:
                return {"reset": False, "rss": vm_status("VmRSS")}
        raise ValueError(f"unknown command {cmd}")


def main():
    worker = Worker()
    out = sys.stdout
    # Anything a library prints goes to stderr, so stdout carries the protocol only.
    sys.stdout = sys.stderr
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("cmd") == "quit":
            break
        try:
            reply = {"ok": True, **worker.handle(msg)}
        except Exception as e:  # reported to the Rust side, which fails with the message
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
