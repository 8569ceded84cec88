"""``sftkit init --from-legacy``: convert an old project's config (a ``.py`` or ``.yaml`` file) to ``sftkit.yaml``.

A ``.py`` file is read as a syntax tree (:mod:`ast`) and never imported or run: its top-level code (``import os``,
``os.system(...)``, prints in ``__post_init__``) does nothing here. Its values are computed statically
(:mod:`~sftkit.legacy.static`): literals, arithmetic, f-strings, dataclass fields and their factories,
``os.getenv(NAME, default)`` (the default), ``__post_init__`` and the methods it calls, instances made at module
level or by factory functions, configs derived from others, and classes or configs in sibling files of the same
folder. What would need the code to run is reported with its line. Secrets (tokens) are never written.

Every field is accounted for: mapped to an sftkit key, already what sftkit (or the preset) does, unset, or listed
as not carried over with its file, line and reason; that list is also written as comments into the project file.
SmolLM3 configs are written on top of the ``smollm3`` / ``smollm3-dpo`` preset; every other config (GPT-OSS, the
Arabic Qwen library's dataclasses and YAML files) on top of sftkit's own defaults. A config from which nothing
sftkit knows can be carried, or that names no model, is refused rather than turned into something else.

Modules: :mod:`~sftkit.legacy.static` (the static reader), :mod:`~sftkit.legacy.read` (an old file -> its config's
field values and their lines), :mod:`~sftkit.legacy.fields` (the old projects' defaults and where each old field
goes), :mod:`~sftkit.legacy.convert` (field values -> sftkit keys, and the project file).
"""
