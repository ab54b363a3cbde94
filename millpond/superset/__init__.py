"""Apache Superset for analysts: bootstrap, server control and dashboards kept as code.

Superset runs from its own virtual environment (``.venv-superset``); this package
runs in the pipeline's environment and drives it through subprocesses.
"""

from millpond.superset.errors import SupersetError

__all__ = ["SupersetError"]
