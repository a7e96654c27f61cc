"""How fast the class-model loop runs: a naive loop as tutorials write it against visexp's own.

    python scripts/benchmark.py                                   # every model, CPU (and CUDA if present)
    python scripts/benchmark.py --models digits googlenet --steps 5 --repeats 3

For each model (random weights at its real input size, built by visexp's own config) it measures
image-steps per second (images x optimisation steps, median over the repeats) and peak memory of:

- `naive`: the loop of tutorials and of lucent/torchbearer's defaults: weights still requiring
  gradients, the loss read back to the host every step;
- `visexp`: `visexp.optimise.ascend`, as `task=visualise` runs it (frozen weights, input
  gradient only, values read every `log_every` steps), for one image and for a batch.

Each measurement runs in a process of its own, so that its peak memory (the process's peak RSS
on the CPU, torch's peak allocation on CUDA) is its own. The FLOP limit is the machine's measured
matmul rate over the FLOPs one image-step needs (forward and the input gradient, counted by
torch's FlopCounterMode): the image-steps/s the hardware could reach if every FLOP ran at matmul
speed. Writes docs/benchmarks.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from torch.utils.flop_counter import FlopCounterMode

from visexp.build import build
from visexp.initialisers import Start
from visexp.models import VisionModel
from visexp.objectives import ClassScore
from visexp.optimise import ascend
from visexp.parameter import ImageParameter
from visexp.provenance import cpu_name
from visexp.regularisers import L2Penalty

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("digits", "googlenet", "resnet50", "vgg16")
LOOPS = (("naive", 1), ("visexp", 1), ("visexp", 8))
TARGET, LAMBDA, LR = 3, 1e-4, 0.05


def load(name: str, device: torch.device) -> VisionModel:
    """The model as `model=NAME` builds it, with random weights (nothing is downloaded)."""
    overrides = [f"model={name}"] + ([] if name in ("digits", "canvas") else ["model.weights=null"])
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return build(cfg.model).to(device)


def noise(model: VisionModel, batch: int) -> torch.Tensor:
    """A seeded noise start (a random network has no gradient at the constant zero image)."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, model.channels, model.input_size, model.input_size)
    return (0.5 * torch.randn(shape, generator=generator)).to(model.device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Steps = Callable[[int], None]
"""Runs a loop for a number of steps."""


def naive_loop(model: VisionModel, batch: int) -> Steps:
    """The tutorial loop: weights require grad, the loss comes back to the host every step."""
    model.net.requires_grad_(True)
    image = noise(model, batch).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=LR)

    def run(steps: int) -> None:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = LAMBDA * image.pow(2).sum() - model.net(image)[:, TARGET].sum()
            loss.backward()
            optimizer.step()
            loss.item()

    return run


def visexp_loop(model: VisionModel, batch: int) -> Steps:
    """visexp's loop, `ascend` as task=visualise calls it (values read every 10 steps)."""
    start = noise(model, batch)
    parameter = ImageParameter(model, Start(base=torch.zeros_like(start), offset=start))
    optimizer = torch.optim.Adam([parameter.offset], lr=LR)
    objective, penalty = ClassScore(model, TARGET), L2Penalty(LAMBDA)

    def run(steps: int) -> None:
        ascend(model, objective, penalty, parameter, optimizer, steps=steps, clamp=True, log_every=10, first_step=1)

    return run


def measure(model_name: str, loop: str, batch: int, device_name: str, steps: int, repeats: int) -> dict[str, Any]:
    """Image-steps/s (median over `repeats` runs of `steps` steps, after warm-up steps) and peak memory."""
    device = torch.device(device_name)
    model = load(model_name, device)
    run = (naive_loop if loop == "naive" else visexp_loop)(model, batch)
    run(2)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(steps)
        sync(device)
        rates.append(batch * steps / (time.perf_counter() - began))
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"model": model_name, "loop": loop, "batch": batch, "device": device_name,
            "image_steps_per_s": statistics.median(rates), "peak_mib": peak / 2**20}


def flops_per_image_step(model_name: str) -> float:
    """FLOPs of one visexp step for one image: forward plus the input gradient."""
    model = load(model_name, torch.device("cpu"))
    image = noise(model, 1).requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        model.net(image)[:, TARGET].sum().backward()
    return float(counter.get_total_flops())


def matmul_rate(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """The machine's measured float32 matmul rate, FLOP/s (best of `repeats`)."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        began = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best


def in_own_process(args: argparse.Namespace, model: str, loop: str, batch: int, device: str) -> dict[str, Any]:
    """`measure` in a fresh Python process (its own peak memory); its JSON result."""
    command = [sys.executable, __file__, "--one", model, loop, str(batch), device,
               "--steps", str(args.steps), "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]], limits: dict[tuple[str, str], float]) -> list[str]:
    """Markdown rows: each measurement, its ratio to the naive loop and its share of the FLOP limit."""
    rows = ["| device | model | loop | batch | image-steps/s | x naive | peak memory (MiB) | x naive memory | share of FLOP limit |",
            "|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        naive = next(r for r in results if (r["device"], r["model"], r["loop"]) == (result["device"], result["model"], "naive"))
        limit = limits[(result["device"], result["model"])]
        rows.append(
            f"| {result['device']} | {result['model']} | {result['loop']} | {result['batch']} | "
            f"{result['image_steps_per_s']:.2f} | {result['image_steps_per_s'] / naive['image_steps_per_s']:.2f} | "
            f"{result['peak_mib']:.0f} | {result['peak_mib'] / naive['peak_mib']:.2f} | "
            f"{100 * result['image_steps_per_s'] / limit:.1f}% |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat (visexp reads values back once)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (the median is reported)")
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "LOOP", "BATCH", "DEVICE"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=ROOT / "docs", help="folder for benchmarks.json and .md")
    args = parser.parse_args()
    if args.one:
        model, loop, batch, device = args.one
        print(json.dumps(measure(model, loop, int(batch), device, args.steps, args.repeats)))
        return

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results, limits, rates = [], {}, {}
    for device in devices:
        rates[device] = matmul_rate(torch.device(device))
        for model in args.models:
            limits[(device, model)] = rates[device] / flops_per_image_step(model)
            for loop, batch in LOOPS:
                result = in_own_process(args, model, loop, batch, device)
                results.append(result)
                print(f"{device} {model} {loop} batch {batch}: {result['image_steps_per_s']:.2f} image-steps/s, "
                      f"{result['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
    machine = {
        "cpu": cpu_name(), "cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "matmul_gflops": {device: rate / 1e9 for device, rate in rates.items()},
        "steps": args.steps, "repeats": args.repeats,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "benchmarks.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    lines = [
        "# Benchmarks", "",
        "Written by `python scripts/benchmark.py` (random weights at each model's input size; the",
        "class-model loop with Adam and an L2 penalty). Image-steps/s: images x optimisation steps per",
        f"second, median of {args.repeats} runs of {args.steps} steps. Peak memory: the process's peak RSS on the CPU",
        "(torch, the model and the loop), torch's peak allocation on CUDA. Share of FLOP limit: the",
        "image-steps/s over what the machine's float32 matmul rate allows for the FLOPs of one",
        "image-step (forward and input gradient).", "",
        f"Machine: {machine['cpu']}, {machine['cpu_threads']} torch threads"
        + (f", {machine['gpu']}" if machine["gpu"] else "")
        + f"; torch {machine['torch']}; matmul "
        + ", ".join(f"{rate:.0f} GFLOP/s ({device})" for device, rate in machine["matmul_gflops"].items()) + ".", "",
        *table(results, limits), "",
    ]
    (args.output / "benchmarks.md").write_text("\n".join(lines))
    print(f"wrote {args.output / 'benchmarks.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
