"""HOW XTREME is evaluated inside lm-eval: request kinds, task classes, checkpoint
backends, model adapters, retrieval, metrics, reports and the CLI.

Kept import-light on purpose: the start-up hook imports this package in every
Python process of an environment where xtreme-harness is installed.
"""

__version__ = "0.1.0"
