"""AOTInductor packages of the warp + decode module: compiled once, loaded in about a second.

``torch.compile`` keeps its work in an on-disk cache, but a warm start still traces the
module with Dynamo and replays Inductor's passes from the cache: ~11 s in the renderer's
process, holding the GIL while eager frames are being served. An AOTInductor package
(``torch.export`` + ``aoti_compile_and_package``) is the compiled kernels and the weights
in one file; loading it is a ``dlopen`` and a copy, so once it exists the compiled path
can serve the very first frame.

One package per input shape (batch size), named by a key over everything that changes the
compiled code or its constants: torch and CUDA versions, the device, dtype, input shapes,
the module's structure and a hash of its weights, and the Inductor options. A package that
fails to load is deleted and built again; building one deletes the other packages of its
batch size (made for another torch, GPU, weights or options).

Measured 2026-11-23 on the H100 machine (torch 2.11.0+cu130): loading a CUDA package
segfaults, whatever it holds (a conv + ReLU too; docs/benchmarks-history.md, rounds 6
and 7, runs M-O). A segfault cannot be caught, so ``RuntimeOptions.aot`` stays off; on the
CPU it works and is tested.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

Shape = tuple[tuple[int, ...], ...]


def weights_sha256(module: nn.Module) -> str:
    """sha256 over the module's parameters and buffers (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _device_tag(device: torch.device) -> str:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{torch.cuda.get_device_name(device)} sm{major}{minor} cuda{torch.version.cuda}"
    return device.type


class AotModule:
    """Calls ``module`` through AOTInductor packages kept in ``cache_dir``, one per shape.

    ``__call__`` loads the package for the inputs' shape, or builds and saves it first
    (seconds to minutes, like a first ``torch.compile``); ``ready`` says whether a call
    would be quick, so a caller can build in the background instead.
    """

    def __init__(self, module: nn.Module, cache_dir: Path,
                 inductor_configs: dict[str, object] | None = None) -> None:
        self.module = module
        self.cache_dir = Path(cache_dir)
        self.inductor_configs = dict(inductor_configs or {})
        self._fns: dict[Shape, object] = {}
        self._weights: str | None = None

    @staticmethod
    def shape_of(args: tuple[Tensor, ...]) -> Shape:
        return tuple(tuple(x.shape) for x in args)

    def path_for(self, args: tuple[Tensor, ...]) -> Path:
        """The package file for inputs like ``args``."""
        if self._weights is None:
            self._weights = weights_sha256(self.module)
        x = args[0]
        key = "\n".join([torch.__version__, _device_tag(x.device), str(x.dtype),
                         repr(self.shape_of(args)), repr(self.module), self._weights,
                         repr(sorted(self.inductor_configs.items()))])
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        return self.cache_dir / f"warp-decode-b{x.shape[0]}-{digest}.pt2"

    def ready(self, args: tuple[Tensor, ...]) -> bool:
        """Whether a call with inputs like ``args`` needs no build (loaded, or on disk)."""
        return self.shape_of(args) in self._fns or self.path_for(args).is_file()

    def __call__(self, *args: Tensor) -> Tensor:
        fn = self._fns.get(self.shape_of(args))
        if fn is None:
            fn = self._load_or_build(args)
        return fn(*args)

    def _load_or_build(self, args: tuple[Tensor, ...]) -> object:
        path = self.path_for(args)
        fn = self._load(path) if path.is_file() else None
        if fn is None:
            self._build(args, path)
            fn = self._load(path)
            if fn is None:
                raise RuntimeError(f"the AOTInductor package just built does not load: {path}")
        self._fns[self.shape_of(args)] = fn
        return fn

    def _load(self, path: Path) -> object | None:
        t0 = time.perf_counter()
        try:
            fn = torch._inductor.aoti_load_package(str(path))
        except Exception as exc:  # truncated, or built by another torch: build it again
            log.warning("compiled package %s does not load (%s); building it again",
                        path.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            path.unlink(missing_ok=True)
            return None
        log.info("loaded %s in %.1f s", path.name, time.perf_counter() - t0)
        return fn

    def _build(self, args: tuple[Tensor, ...], path: Path) -> None:
        t0 = time.perf_counter()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # export swaps the module's parameters for fake tensors while it traces: a private
        # copy keeps the shared ones real for whoever runs them meanwhile (the eager path)
        module = copy.deepcopy(self.module)
        with torch.no_grad():
            exported = torch.export.export(module, args, strict=False)
        del module
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.pt2")  # must end in .pt2
        try:
            torch._inductor.aoti_compile_and_package(
                exported, package_path=str(tmp), inductor_configs=self.inductor_configs)
            os.replace(tmp, path)  # whole or absent: a crash mid-build leaves no package
        finally:
            tmp.unlink(missing_ok=True)
        for stale in path.parent.glob(f"warp-decode-b{args[0].shape[0]}-*.pt2"):
            if stale != path:  # another torch, GPU, weights or options: ~200 MB each
                stale.unlink(missing_ok=True)
        log.info("built %s in %.1f s", path.name, time.perf_counter() - t0)
