"""The vocoder peer: r9y9/wavenet_vocoder's WaveNet (PyTorch) at the vocoder `small` preset's size, one
training step timed as its train.py takes it (forward, softmax cross-entropy over 256 mu-law classes,
backward, Adam), on random codes and mels of the preset's batch (4 x 4096 samples, 80-band mel, hop 256).

    python bench/peers/r9y9_wavenet_step.py WAVENET_VOCODER_CHECKOUT OUT.json [--compile] [--steps N]

Its model as the checkout defines it: 20 layers in 2 stacks (dilations 1..512), kernel 2, residual 64,
gate 128, skip 128, one-hot input, transposed-convolution mel upsampling (scales 4 x 4 x 4 x 4), no
dropout, float32, 2 threads.  The checkout's package is loaded without its __init__ (which needs a
version file that its setup.py writes).
"""
import argparse
import json
import pathlib
import statistics
import sys
import time
import types

import torch


def load_wavenet(checkout):
    pkg = types.ModuleType("wavenet_vocoder")
    pkg.__path__ = [str(pathlib.Path(checkout) / "wavenet_vocoder")]
    sys.modules["wavenet_vocoder"] = pkg
    from wavenet_vocoder.wavenet import WaveNet

    return WaveNet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkout")
    ap.add_argument("out")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    WaveNet = load_wavenet(a.checkout)
    model = WaveNet(out_channels=256, layers=20, stacks=2, residual_channels=64, gate_channels=128,
                    skip_out_channels=128, kernel_size=2, dropout=0.0, cin_channels=80,
                    upsample_conditional_features=True, upsample_net="ConvInUpsampleNetwork",
                    upsample_params={"upsample_scales": [4, 4, 4, 4], "cin_channels": 80, "cin_pad": 0},
                    scalar_input=False)
    step_model = torch.compile(model) if a.compile else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch, length, hop = 4, 4096, 256
    codes = torch.randint(0, 256, (batch, length))
    x = torch.nn.functional.one_hot(codes, 256).permute(0, 2, 1).float()
    c = torch.randn(batch, 80, length // hop)
    target = torch.randint(0, 256, (batch, length))
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = step_model(x, c)
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        opt.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    later = times[a.warmup:]
    med = statistics.median(later)
    rec = {"peer": "r9y9/wavenet_vocoder", "compile": a.compile, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "command": " ".join(["python", *sys.argv]),
           "params": sum(p.numel() for p in model.parameters()), "seconds_per_step_median": med,
           "steps_per_sec": 1.0 / med, "samples_per_step": batch * length,
           "samples_per_sec": batch * length / med, "steps_timed": len(later),
           "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                        if line.startswith("model name")), "")}
    pathlib.Path(a.out).write_text(json.dumps(rec, indent=2) + "\n")
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
