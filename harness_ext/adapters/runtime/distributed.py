"""Data-parallel evaluation through lm-eval's own multi-rank path.

Under ``accelerate launch -m lm_eval ...`` or ``torchrun -m lm_eval ...`` lm-eval
hands each rank a slice of the documents and gathers the per-document items on
rank 0 before aggregating (so corpus metrics and whole-corpus retrieval stay
exact). It needs the model to report ``rank``/``world_size`` and to implement the
collectives; this module supplies them with ``accelerate`` (GPU: NCCL, CPU: gloo).
"""

from __future__ import annotations

import os
from typing import Any


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class Collectives:
    """rank / world_size / all_gather / gather_object / barrier for one process group."""

    def __init__(self, cpu: bool = False) -> None:
        from accelerate import Accelerator

        self.accelerator = Accelerator(cpu=cpu)
        self.rank = self.accelerator.process_index
        self.world_size = self.accelerator.num_processes
        self.device = str(self.accelerator.device)

    def all_gather(self, tensor):
        return self.accelerator.gather(tensor.to(self.accelerator.device))

    def gather_object(self, obj: Any, dst: int = 0) -> list | None:
        import torch.distributed as dist

        gathered: list | None = [None] * self.world_size if self.rank == dst else None
        dist.gather_object(obj, gathered, dst=dst)
        return gathered

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()
