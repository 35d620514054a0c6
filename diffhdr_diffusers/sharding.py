"""Sharding work across processes: one place for batch merging and evaluation.

Under ``accelerate launch`` (or torchrun: ``MASTER_ADDR`` set) the processes join accelerate's process group:
:meth:`ProcessGroup.split` is :meth:`PartialState.split_between_processes` (contiguous shares) and
:meth:`ProcessGroup.gather` is :func:`accelerate.utils.gather_object`. Without a launcher, with only ``RANK`` /
``WORLD_SIZE`` set, process ``rank`` takes ``items[rank::world_size]`` and rank 0 gathers the other ranks' shard
files (``shards/rank-<N>.json``), waiting for them up to a timeout.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, OutputError


@dataclass
class ProcessGroup:
    """This process's place in a sharded run; ``state`` is accelerate's ``PartialState`` under a launcher."""

    rank: int = 0
    world_size: int = 1
    state: object = None
    device: object = None
    started: float = field(default_factory=time.time)

    def split(self, items: Sequence) -> list:
        """This process's share of ``items``."""
        items = list(items)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise InputError(f"invalid process rank {self.rank} of world size {self.world_size}.")
        if self.state is not None:
            with self.state.split_between_processes(items) as mine:
                return list(mine)
        return items[self.rank::self.world_size]

    def gather(self, document: dict, folder: Path, timeout: float = 3600.0) -> list[dict] | None:
        """Every rank's ``document`` on rank 0 (in rank order), ``None`` elsewhere.

        Each rank also writes its document to ``folder/rank-<N>.json`` (a record of the run). Without a launcher
        rank 0 reads the other ranks' files from there, waiting up to ``timeout`` seconds for missing ones. Under a
        launcher this is a run's last collective: every rank then waits for the others and closes the process
        group, so no rank exits while another still talks to it (gloo aborts the survivor otherwise).
        """
        from .io import write_text_atomically

        write_text_atomically(shard_path(folder, self.rank), json.dumps(document), overwrite=True)
        if self.world_size == 1:
            return [document]
        if self.state is not None:
            from accelerate.utils import gather_object

            documents = gather_object([document])
            self.state.wait_for_everyone()
            import torch.distributed

            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
            return sorted(documents, key=lambda item: item["rank"]) if self.rank == 0 else None
        if self.rank != 0:
            return None
        return collect_shards(folder, self, timeout)


def shard_path(folder: Path, rank: int) -> Path:
    return Path(folder) / f"rank-{rank}.json"


def collect_shards(folder: Path, group: ProcessGroup, timeout: float, poll: float = 0.5) -> list[dict]:
    """Rank 0 without a launcher: read every rank's shard file, waiting up to ``timeout`` seconds for the missing."""
    deadline = time.monotonic() + timeout
    shards: dict[int, dict] = {}
    while True:
        for rank in range(group.world_size):
            path = shard_path(folder, rank)
            # Files older than this run (minus slack for ranks that started earlier) are stale leftovers.
            if rank not in shards and path.is_file() and path.stat().st_mtime >= group.started - 60:
                shards[rank] = json.loads(path.read_text())
        if len(shards) == group.world_size:
            return [shards[rank] for rank in range(group.world_size)]
        if time.monotonic() > deadline:
            missing = sorted(set(range(group.world_size)) - set(shards))
            raise OutputError(f"{folder}: ranks {missing} wrote no results within {timeout:.0f} s; check those "
                              "processes' logs, or wait longer for them.")
        time.sleep(poll)


def process_group() -> ProcessGroup:
    """Rank and world size from ``accelerate launch`` / torchrun, or plain ``RANK`` / ``WORLD_SIZE`` variables."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1 and "MASTER_ADDR" in os.environ:
        import torch
        from accelerate import PartialState

        from .devices import cpu_forced

        use_cpu = cpu_forced() or not torch.cuda.is_available()
        state = PartialState(cpu=use_cpu)  # accelerate 1.15 ignores ACCELERATE_USE_CPU here unless told.
        if state.num_processes == world_size:
            return ProcessGroup(state.process_index, state.num_processes, state, state.device)
    return ProcessGroup(rank, world_size)


__all__ = ["ProcessGroup", "collect_shards", "process_group", "shard_path"]
