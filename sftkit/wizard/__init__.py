"""The ``sftkit init`` wizard: a short list of questions, built from data, that writes a minimal ``sftkit.yaml``.

Each :class:`~sftkit.wizard.questions.Question` names the answer it sets, how its default is found (mostly from
the chosen preset), how typed text becomes a value and when it is asked. The same table serves three ways in:

* given answers (the CLI's flags, ``--lr 3e-6``): checked with the question's own parser, and then not asked;
* ``yes``: every question not given takes its default, no prompt is ever shown;
* a terminal: :func:`~sftkit.wizard.interactive.run_interactive` asks the rest through a ``Prompter``, shows a
  summary and lets the user change any answer before anything is written.

The answers become ``extends: <preset>`` plus only the values that differ from the preset's resolved ones
(:mod:`sftkit.wizard.mapping`), written by :mod:`sftkit.projectfile` after resolving it as a self-check.
Tokens are never asked for: the wizard only says whether one is found in the environment or the Hub login.

Modules, in the order a run goes through them:

* :mod:`~sftkit.wizard.parse`: typed text -> a checked value (model, data, numbers);
* :mod:`~sftkit.wizard.environment`: what the machine has (GPU precision, tokens, a local file's rows);
* :mod:`~sftkit.wizard.questions`: the questions, their choices, defaults and notes;
* :mod:`~sftkit.wizard.state`: the answers so far and what follows from them;
* :mod:`~sftkit.wizard.mapping`: answers -> the project file's values;
* :mod:`~sftkit.wizard.interactive`: prompts, the summary and "change an answer";
* :mod:`~sftkit.wizard.command`: the whole of ``sftkit init`` short of printing.
"""
