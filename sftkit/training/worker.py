"""One process of a multi-process run (started by torchrun from `sftkit train --nproc N`)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from sftkit.console import console, print_error
    from sftkit.errors import InterruptedRun, SftkitError
    from sftkit.resolve import resolve_config
    from sftkit.training.launch import die_with_parent
    from sftkit.training.pipeline import is_main_process, run_pipeline

    die_with_parent()  # torchrun gone (the launcher killed it): so is this process
    config_path, mode, resume = argv[0], argv[1], (argv[2] if len(argv) > 2 else "") or None
    # the launcher passes on the user's own --trust-formatting-func: the config file cannot grant it
    cfg = resolve_config(config_file=config_path).config.trusting_formatting_func("--trust-formatting-func" in argv[3:])
    try:
        # the run folder was created by the launcher; every rank trains, rank 0 alone writes; the launcher
        # prints the summary from the run folder
        run_pipeline(cfg, resume=resume if mode == "--resume" else None, overwrite=False, console=console, live=False, launched=True)
    except InterruptedRun:
        return 0  # a requested stop, checkpoint saved: the launcher reports it (a failure would make torchrun kill the other ranks mid-save)
    except SftkitError as err:
        if is_main_process():
            print_error(err)
        return err.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
