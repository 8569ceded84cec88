"""``sftkit init --from-legacy``: convert an old SmolLM3 dataclass config (a ``.py`` file) to ``sftkit.yaml``.

The file is read as a syntax tree (:mod:`ast`) and never imported or run: its top-level code (``import os``,
``os.system(...)``, prints in ``__post_init__``) does nothing here. Only literal values are taken
(``batch_size: int = 6``, ``self.experiment_name = "x"`` in ``__post_init__``, keyword arguments of the
module-level ``config = SomeConfig(...)``); any other expression (``os.environ.get("TRACKIO_TOKEN")``) is
reported as skipped with its line. Secrets (tokens) are never written.

Fields equal to the old ``SmolLM3Config`` defaults need no line: the ``smollm3`` preset already holds them
(``smollm3-dpo`` for the old DPO config). Everything else is mapped to sftkit keys and compared with the
preset's resolved values, so the output holds ``extends:`` plus only what differs.

Modules: :mod:`~sftkit.legacy.read` (the syntax tree -> field values and their lines), :mod:`~sftkit.legacy.fields`
(the old defaults and where each old field goes), :mod:`~sftkit.legacy.convert` (field values -> sftkit keys, and
the project file).
"""
