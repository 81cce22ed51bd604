"""Which AOTInductor package crashes on load, and why (issue #6, round 7).

The W+G package segfaulted on an H100 inside ``aoti_load_package`` (BENCHMARKS.md). Each
case here is built and loaded in its own fresh process (a segfault ends only that case),
from the smallest to the whole module, in the main thread (no background compile):

- ``conv``       a conv + ReLU: does any CUDA package load on this machine?
- ``grid3d``     a 5-D ``grid_sample`` (no c-shim in AOTInductor: a proxy-executor fallback)
- ``warpdecode`` the renderer's W+G module at batch 1

    python bench/aot_smoke.py                 # every case
    python bench/aot_smoke.py --case conv     # one, in this process
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CASES = ("conv", "grid3d", "warpdecode")


class _Grid3d(torch.nn.Module):
    def forward(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(x, grid, align_corners=False) * 2


def _case(name: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dt = torch.float16 if dev.type == "cuda" else torch.float32
    if name == "conv":
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
        return m.to(dev, dt).eval(), (torch.randn(1, 3, 32, 32, device=dev, dtype=dt),)
    if name == "grid3d":
        x = torch.randn(1, 4, 8, 16, 16, device=dev, dtype=dt)
        grid = torch.rand(1, 8, 16, 16, 3, device=dev, dtype=dt) * 2 - 1
        return _Grid3d().eval(), (x, grid)
    import liveportrait_speed as s  # bench/ is on sys.path: the script's folder

    from avatar_vcam.engine.renderers.liveportrait.fast import FastWarpDecode

    nets = s.synth_networks()
    m = FastWarpDecode(nets.warping, nets.spade, 64, pad8=True, width_taps=True, depth_taps=True,
                       occlusion_taps=True, phase_up=True, compose_shortcut=True)
    return m.to(dev, dt).eval().requires_grad_(False), s.make_inputs(1, 64, dev, dt)


@torch.no_grad()
def run_case(name: str, folder: Path) -> None:
    m, args = _case(name)
    want = m(*args)
    t = time.perf_counter()
    ep = torch.export.export(m, args, strict=False)
    path = torch._inductor.aoti_compile_and_package(ep, package_path=str(folder / f"{name}.pt2"))
    print(f"{name}: built in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    fn = torch._inductor.aoti_load_package(path)
    print(f"{name}: loaded in {time.perf_counter() - t:.1f} s", flush=True)
    got = fn(*args)
    err = float((got.float() - want.float()).norm() / want.float().norm())
    print(f"{name}: ran, rel err vs eager {err:.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--timeout", type=int, default=240)
    args = ap.parse_args()
    if args.case:
        run_case(args.case, Path(tempfile.mkdtemp(prefix="aot_smoke_")))
        return
    print(f"torch {torch.__version__}", flush=True)
    for name in CASES:
        try:
            proc = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--case", name],
                                  capture_output=True, text=True, timeout=args.timeout,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            print(f"{name}: timed out after {args.timeout} s", flush=True)
            continue
        print(proc.stdout.strip())
        if proc.returncode:
            err = [ln for ln in proc.stderr.splitlines() if "Warning" not in ln]
            print(f"{name}: rc={proc.returncode}\n" + "\n".join(err[-25:]), flush=True)


if __name__ == "__main__":
    main()
