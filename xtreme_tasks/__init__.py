"""WHAT is evaluated: the XTREME task table, data loaders and the generated lm-eval YAML.

``TASK_DIR`` is the folder lm-eval indexes (one sub-folder per task).
"""

from pathlib import Path

from xtreme_tasks.table import TASK_ORDER, TASKS, TaskSpec, get_task

TASK_DIR: str = str(Path(__file__).resolve().parent / "tasks")

__all__ = ["TASK_DIR", "TASKS", "TASK_ORDER", "TaskSpec", "get_task"]
