"""Training throughput of `nas.train.train` against a plain per-sample torchvision DataLoader loop.

Both train the same BN/GAP reference net (nas.train swapping in nas.batchnorm's kernel, as it
does on every CPU run; a third line trains it with torch's BatchNorm2d, to show that kernel's
share) from the same initial weights with Adam (lr 1e-3) on the
first --images MNIST training images, at each batch size of --batch-sizes. The DataLoader loop is
what the seed notebooks do: a torchvision-style Dataset that makes a PIL image per sample and runs
ToTensor + Normalize on it, DataLoader(shuffle=True, num_workers=0), NCHW model, default Adam,
loss.item() per batch. Throughput is timed after a warm-up of 20 batches and excludes evaluation.

The machine is shared, so the two loops alternate for --rounds rounds and the median of each is
reported; the printed CPU pressure says how contended the run was. Also printed: the achieved
training GFLOP/s (3 x forward MACs x 2 per image, MACs from fvcore) and its share of the SGEMM
peak measured in the same run.

    .venv/bin/python bench/train_speed.py [--images 8192] [--batch-sizes 128,32] [--rounds 2] [--net 13k]

Exit code 2 when MNIST is not cached (`nas data fetch mnist` fetches it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

# nas first: it sets OMP_WAIT_POLICY (both loops below run under it) before torch is loaded.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import nas  # noqa: E402, F401, I001

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from nas._cache import cache_dir  # noqa: E402
from nas.data import _datasets as nas_data  # noqa: E402
from nas.train.cpu import keep_freed_memory  # noqa: E402
from nas.data import Split  # noqa: E402
from nas.config import Schedule  # noqa: E402
from nas.train import TrainOptions, available_cores, seed_everything, train  # noqa: E402

WARMUP_BATCHES = 20  # oneDNN builds its kernels on the first batches; nas.train reports progress every 20


def reference_net(width: str) -> nn.Sequential:
    """The BN/GAP net of DESIGN.md 5: three stages of conv3x3+BN+ReLU, max pools, GAP, linear.

    "20k": 8,16 | 16,24 | 24,32 channels (19,650 parameters); "13k": 8,8 | 16,16 | 24,24 (13,186),
    the size of the net the design's measured figures come from. Later this comes from nas.model.build.
    """
    channels = {"20k": (8, 16, 16, 24, 24, 32), "13k": (8, 8, 16, 16, 24, 24)}[width]
    layers: list[nn.Module] = []
    c_in = 1
    for i, c_out in enumerate(channels):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        if i in (1, 3):
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
    return nn.Sequential(*layers)


def forward_macs(model: nn.Module) -> int:
    from fvcore.nn import FlopCountAnalysis

    model.eval()
    analysis = FlopCountAnalysis(model, torch.zeros(1, 1, 28, 28))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())


def sgemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def cpu_pressure() -> str:
    """The kernel's CPU pressure (share of time some task waited for a CPU): how shared the machine is."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return line.replace("some ", "")
    except OSError:
        return "n/a"


def pressure_avg10() -> float:
    try:
        return float(cpu_pressure().split()[0].split("=")[1])
    except (IndexError, ValueError):
        return 0.0


def rate_nas_train(dataset, width: str, batch_size: int, nas_batchnorm: bool = True) -> float:
    """Images/s after the warm-up of one nas.train epoch (timed between progress calls).

    With `nas_batchnorm` nas.train swaps nas.batchnorm's kernel in for torch's BatchNorm2d, as it
    does by default on a CPU; without, the net keeps torch's layers (to show what the kernel adds)."""
    seed_everything(0)
    model = reference_net(width)
    stamps: list[tuple[int, float]] = []

    def progress(epoch, epochs, batch, batches):
        if batch % WARMUP_BATCHES == 0:
            stamps.append((batch, time.perf_counter()))

    options = TrainOptions(Schedule("constant", 1, 1e-3), optimizer="adam", batch_size=batch_size, seed=0)
    train(model, dataset, options, progress=progress, cpu_kernels=nas_batchnorm)
    (b0, t0), (b1, t1) = stamps[0], stamps[-1]
    return (b1 - b0) * batch_size / (t1 - t0)


class PerSampleMNIST(torch.utils.data.Dataset):
    """torchvision.datasets.MNIST's __getitem__: a PIL image per sample, then the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def make_loader(split: Split, batch_size: int) -> torch.utils.data.DataLoader:
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    dataset = PerSampleMNIST(split.images[:, 0].numpy(), split.labels.numpy(), transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)


def rate_dataloader(split: Split, width: str, batch_size: int) -> float:
    """Images/s after the warm-up of the seed notebooks' loop (one epoch over `split`)."""
    seed_everything(0)
    model = reference_net(width)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    running_loss, correct = 0.0, 0
    t0 = t1 = 0.0
    timed = 0
    for batch, (x, y) in enumerate(make_loader(split, batch_size), start=1):
        optimizer.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        correct += (out.argmax(1) == y).sum().item()
        if batch == WARMUP_BATCHES:
            t0 = time.perf_counter()
        elif batch > WARMUP_BATCHES and len(y) == batch_size:
            t1, timed = time.perf_counter(), batch - WARMUP_BATCHES
    return timed * batch_size / (t1 - t0)


def rate_dataloader_data_only(split: Split, batch_size: int) -> float:
    """Images/s of the DataLoader alone (no training): the cost the in-memory loop removes."""
    start, images = time.perf_counter(), 0
    for x, _ in make_loader(split, batch_size):
        images += len(x)
    return images / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192, help="training images per timed epoch (default 8192)")
    parser.add_argument("--batch-sizes", default="128,32", help="comma-separated (default 128,32)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per batch size (default 2)")
    parser.add_argument("--net", choices=("13k", "20k"), default="13k", help="reference net width (default 13k)")
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.images < 2 * WARMUP_BATCHES * max(batch_sizes):
        parser.error(f"--images {args.images} is too few: need >= {2 * WARMUP_BATCHES * max(batch_sizes)} "
                     f"for {WARMUP_BATCHES} warm-up + {WARMUP_BATCHES} timed batches of {max(batch_sizes)}")

    cache = cache_dir() / "mnist.npz"
    if not cache.exists():
        print(f"MNIST is not cached at {cache}; run `nas data fetch mnist` (or `make data`) first", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    mnist = nas_data.load("mnist")
    split = Split(mnist.train.images[:args.images], mnist.train.labels[:args.images])
    small_val = Split(mnist.val.images[:256], mnist.val.labels[:256])  # keeps the untimed eval short
    subset = dataclasses.replace(mnist, train=split, val=small_val, test=small_val)

    # Process-wide, so the DataLoader loop gets it too: the ratio does not count it (see nas/allocator.py).
    keep_freed_memory()
    model = reference_net(args.net)
    params = sum(p.numel() for p in model.parameters())
    macs = forward_macs(model)
    train_flops = 3 * macs * 2
    peak = sgemm_peak_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {available_cores()} cores, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; CPU pressure before: {cpu_pressure()}")
    print(f"net {args.net}: {params:,} parameters, {macs / 1e6:.2f} M forward MACs/image (fvcore), "
          f"~{train_flops / 1e6:.1f} MFLOP/image to train")
    print(f"SGEMM peak (2048x2048 torch.mm, best of 5): {peak:.1f} GFLOP/s")
    print(f"{args.images} MNIST images per epoch, Adam lr 1e-3, {args.rounds} alternating rounds, "
          f"timed after {WARMUP_BATCHES} warm-up batches\n")

    for batch_size in batch_sizes:
        ours, ours_torch_bn, theirs = [], [], []
        for _ in range(args.rounds):
            ours.append(rate_nas_train(subset, args.net, batch_size))
            ours_torch_bn.append(rate_nas_train(subset, args.net, batch_size, nas_batchnorm=False))
            theirs.append(rate_dataloader(split, args.net, batch_size))
        data_only = rate_dataloader_data_only(split, batch_size)
        a, b = statistics.median(ours), statistics.median(theirs)
        a_torch_bn = statistics.median(ours_torch_bn)
        gflops = a * train_flops / 1e9
        print(f"batch {batch_size}:")
        print(f"  nas.train            {a:7.0f} images/s  (rounds: {', '.join(f'{r:.0f}' for r in ours)}; "
              f"{50_000 / a:.1f} s per 50k-image epoch)")
        print(f"  ... torch BatchNorm  {a_torch_bn:7.0f} images/s  (rounds: "
              f"{', '.join(f'{r:.0f}' for r in ours_torch_bn)}; nas.batchnorm gives {a / a_torch_bn:.2f}x)")
        print(f"  DataLoader loop      {b:7.0f} images/s  (rounds: {', '.join(f'{r:.0f}' for r in theirs)}; "
              f"{50_000 / b:.1f} s per 50k-image epoch)")
        print(f"  ratio                {a / b:7.2f}x")
        print(f"  DataLoader data only {data_only:7.0f} images/s (no training)")
        print(f"  nas.train            {gflops:7.1f} GFLOP/s = {100 * gflops / peak:.1f}% of the SGEMM peak")
        print(f"  CPU pressure: {cpu_pressure()}", flush=True)
        if pressure_avg10() > 20:
            # Without OMP_WAIT_POLICY=PASSIVE, 2 threads on 2 shared cores slow down 10-30x when
            # another process is busy; with it, still by about the neighbour's share.
            print("  WARNING: other processes compete for the CPU; these figures measure the neighbours too")
    return 0


if __name__ == "__main__":
    sys.exit(main())
