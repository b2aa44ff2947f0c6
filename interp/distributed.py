"""Data parallelism under ``torchrun``: the heavy analyses split their work over ranks by themselves.

Launch any script or notebook export with ``torchrun --nproc-per-node N script.py`` (add
``--nnodes M`` and a rendezvous for several machines): the first library call that has work to
split joins the process group (NCCL on GPUs, each rank on ``cuda:$LOCAL_RANK``; gloo on the CPU),
and then

- :func:`interp.cache.cache_activations` writes every N-th shard on each rank (rank 0 writes the
  manifest);
- :func:`interp.patching.resid_pre_sweep`, :func:`~interp.patching.hook_sweep` and
  :func:`~interp.patching.head_sweep` (and so :func:`~interp.patching.cross_model_sweep`) split
  their cells over ranks;
- :func:`interp.behavior.generate` (and so knowledge grading, the refusal, steering and unmasking
  evaluations) and :func:`interp.unmask.learn.answer_nll` split their batches over ranks.

Each rank computes exactly the batches a single process would (same composition, same sampling
seed per batch), so the results are identical to one process; they are gathered on every rank,
so the rest of the script runs the same everywhere and rank 0 can write the outputs
(:func:`is_main`). Every rank must make the same calls in the same order (the usual SPMD rule).
A rank that dies stops the run: torchrun ends the other ranks and reports which one failed
(collectives also time out after ``INTERP_DIST_TIMEOUT`` seconds, default 1800); the activation
store written so far is resumable, since every shard is complete or absent.

Example::

    # torchrun --nproc-per-node 2 sweep.py
    from interp import distributed, load_pair
    pair = load_pair("default")
    result = cross_model_sweep(pair, texts, metric)     # cells split over the 2 ranks
    if distributed.is_main():
        result.to_frame().to_csv("sweep.csv")
"""

import atexit
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch

__all__ = ["world", "rank_and_world", "is_main", "active", "local", "barrier", "mine", "gather_indexed",
           "split_cells", "split_layers"]

T = TypeVar("T")
_LOCAL = [0]  # > 0 inside local(): nested library calls run undivided on this rank


def world() -> int:
    """How many processes run this script (``WORLD_SIZE`` set by torchrun; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)``; joins the process group on first use when launched by torchrun."""
    n = world()
    if n == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():  # each rank its own GPU (without this every rank lands on GPU 0)
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        timeout = timedelta(seconds=float(os.environ.get("INTERP_DIST_TIMEOUT", "1800")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timeout)
        atexit.register(_leave)
    return dist.get_rank(), dist.get_world_size()


def _leave() -> None:
    """Leave the process group while the interpreter is still whole (registered at joining).

    A process that exits still in a gloo group can abort in interpreter finalisation ("terminate
    called without an active exception") when gloo's worker threads release tensors after Python is
    gone; torchrun then reports the rank as failed although its work was done.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes outputs."""
    return rank_and_world()[0] == 0


def active() -> bool:
    """True when work should be split: several ranks, and not inside :func:`local`."""
    return world() > 1 and _LOCAL[0] == 0


@contextmanager
def local() -> Iterator[None]:
    """Run library calls undivided on this rank (used inside a call whose work is already split)."""
    _LOCAL[0] += 1
    try:
        yield
    finally:
        _LOCAL[0] -= 1


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world() > 1:
        import torch.distributed as dist

        rank_and_world()
        dist.barrier()


def mine(n_items: int) -> list[int]:
    """The work items of this rank out of ``range(n_items)``: every ``world``-th, from its rank."""
    if not active():
        return list(range(n_items))
    rank, size = rank_and_world()
    return list(range(rank, n_items, size))


def gather_indexed(items: dict[int, T], n_items: int) -> list[T]:
    """Every rank's ``{index: result}`` joined into one list in index order, on every rank.

    Raises ``RuntimeError`` naming the missing indices if the ranks did not cover ``range(n_items)``.
    """
    if world() == 1:
        joined = dict(items)
    else:
        import torch.distributed as dist

        rank_and_world()
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, {k: _to_cpu(v) for k, v in items.items()})
        joined = {k: v for part in parts for k, v in part.items()}
    missing = sorted(set(range(n_items)) - set(joined))
    if missing:
        raise RuntimeError(f"work items {missing[:10]} were computed by no rank; every rank must make the same calls")
    return [joined[k] for k in range(n_items)]


def _to_cpu(v: Any) -> Any:
    return v.cpu() if isinstance(v, torch.Tensor) else v


def split_cells(run: Callable[..., torch.Tensor], positions: torch.Tensor, value_positions: torch.Tensor,
                layers: Sequence[int]) -> torch.Tensor:
    """A sweep ``[layers, cells]`` computed with its cells split over ranks.

    ``run(layers=..., positions=..., value_positions=...)`` computes a part undivided. With at least
    as many cells as ranks each rank takes every ``world``-th cell (later cells recompute fewer
    positions, so striding balances the work); otherwise every ``world``-th layer."""
    rank, size = rank_and_world()
    n_cells = positions.shape[0]
    with local():
        if n_cells >= size:
            idx = list(range(rank, n_cells, size))
            part = run(layers=list(layers), positions=positions[idx], value_positions=value_positions[idx])
            got = gather_indexed({c: part[:, j] for j, c in enumerate(idx)}, n_cells)
            return torch.stack(got, 1).to(part.device)
    return split_layers(lambda part: run(layers=part, positions=positions, value_positions=value_positions), layers,
                        positions.device)


def split_layers(run: Callable[[list[int]], torch.Tensor], layers: Sequence[int], device: torch.device) -> torch.Tensor:
    """A result ``[layers, ...]`` with the layers split over ranks: ``run(part)`` computes the rows
    of ``part`` undivided; each rank takes every ``world``-th layer; joined on ``device``."""
    idx = mine(len(layers))
    with local():
        part = run([layers[i] for i in idx]) if idx else None
    got = gather_indexed({i: part[j] for j, i in enumerate(idx)} if part is not None else {}, len(layers))
    return torch.stack(got).to(device)
