"""Static shell completion scripts (bash, zsh, fish) generated from the CLI's own command tree.

``sftkit completion SHELL`` prints the script for the installed sftkit (generated here, when asked, so it always
matches the installed commands, options and config keys; ``--install`` writes it where the shell loads completions
from). The scripts are static: a TAB never starts Python, except for preset names, which are asked of
``sftkit presets list --names`` at completion time, so new preset files need no regeneration. ``--set``
completes every config key (``train.lea`` -> ``train.learning_rate=``) from the schema; options and arguments
that take one of a few values (``--dtype``, ``completion SHELL``) complete those values.

The copies in the repository's ``completions/`` are the output of ``python -m sftkit.completion completions/``;
a test regenerates them and fails when they are stale.
"""

from __future__ import annotations

import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

PRESET_OPTIONS = ("--preset", "-p")
SET_OPTIONS = ("--set", "-s")
PATH_OPTIONS = (
    "--config",
    "-c",
    "--output-dir",
    "-o",
    "--output",
    "--data",
    "--deepspeed",
    "--from-legacy",
    "--config-path",
)


@dataclass
class Opt:
    names: list[str]
    help: str
    takes_value: bool
    choices: list[str] = field(
        default_factory=list
    )  # the values it takes, when it takes one of a few


@dataclass
class Cmd:
    path: list[str]
    help: str
    options: list[Opt] = field(default_factory=list)
    subcommands: list[Cmd] = field(default_factory=list)
    choices: list[str] = field(
        default_factory=list
    )  # the values its arguments take, when one of a few


def command_tree() -> Cmd:
    import typer

    from sftkit.cli import app

    root = typer.main.get_command(app)
    return _walk(root, [], typer.Context(root, info_name="sftkit"))


def _walk(cmd, path: list[str], ctx) -> Cmd:
    node = Cmd(path, (cmd.get_short_help_str(limit=70) if path else "sftkit"))
    for param in cmd.get_params(ctx):
        kind = getattr(param, "param_type_name", "")
        if getattr(param, "opts", None) and kind == "option" and not param.hidden:
            names = [*param.opts, *param.secondary_opts]
            takes = not param.is_flag and not param.count
            node.options.append(
                Opt(
                    names,
                    _one_line(param.help),
                    takes,
                    _choices(param) if takes else [],
                )
            )
        elif kind == "argument":
            node.choices += _choices(param)
    if hasattr(cmd, "list_commands"):  # a group
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                node.subcommands.append(
                    _walk(
                        sub, [*path, name], type(ctx)(sub, info_name=name, parent=ctx)
                    )
                )
    return node


def _choices(param) -> list[str]:
    """The values a parameter takes when it is a choice (a ``Literal``, or click's ``Choice`` in older typer)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if typing.get_origin(annotation) is typing.Literal:
        return [str(c) for c in typing.get_args(annotation)]
    return [
        str(c) for c in getattr(getattr(param, "type", None), "choices", None) or ()
    ]


def _one_line(text: str | None) -> str:
    """A help text as one short line that is safe inside every script's quotes (and zsh's ``[...]``)."""
    text = " ".join((text or "").split()).replace("\\[", "[")
    return text.translate(str.maketrans("[]", "()", "'\""))[:70]


def _all(node: Cmd) -> list[Cmd]:
    out = [node]
    for sub in node.subcommands:
        out += _all(sub)
    return out


def set_words() -> list[str]:
    from sftkit.keys import all_keys

    return [f"{k}=" for k in all_keys()]


def _option_choices(root: Cmd) -> dict[str, list[str]]:
    """Option name -> the values it takes, over every command (an option named alike in several: all of them)."""
    out: dict[str, list[str]] = {}
    for node in _all(root):
        for opt in node.options:
            for n in opt.names:
                if opt.choices:
                    out[n] = list(dict.fromkeys(out.get(n, []) + opt.choices))
    return out


def bash_script(root: Cmd) -> str:
    cases = []
    for node in _all(root):
        words = " ".join(
            [s.path[-1] for s in node.subcommands]
            + node.choices
            + [n for o in node.options for n in o.names]
        )
        cases.append(f'        "{" ".join(node.path)}") words="{words}" ;;')
    chosen = _option_choices(root)
    value_opts = sorted(
        {
            n
            for node in _all(root)
            for o in node.options
            if o.takes_value
            for n in o.names
        }
        - set(chosen)
    )
    choice_cases = "".join(
        f"""
        {name})
            COMPREPLY=( $(compgen -W "{" ".join(values)}" -- "$cur") ); return ;;"""
        for name, values in sorted(chosen.items())
    )
    return f"""# bash completion for sftkit (generated by `python -m sftkit.completion`; do not edit)
_sftkit_complete() {{
    local cur prev path words i w
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        {"|".join(PRESET_OPTIONS)})
            COMPREPLY=( $(compgen -W "$(sftkit presets list --names 2>/dev/null)" -- "$cur") ); return ;;
        {"|".join(SET_OPTIONS)})
            compopt -o nospace 2>/dev/null
            COMPREPLY=( $(compgen -W "{" ".join(set_words())}" -- "$cur") ); return ;;
        {"|".join(PATH_OPTIONS)})
            COMPREPLY=( $(compgen -f -- "$cur") ); return ;;{choice_cases}
        {"|".join(o for o in value_opts if o not in PRESET_OPTIONS + PATH_OPTIONS + SET_OPTIONS)})
            return ;;
    esac
    path=""
    for (( i=1; i<COMP_CWORD; i++ )); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in -*) continue ;; esac
        case " $(_sftkit_subcommands "$path") " in *" $w "*) path="${{path:+$path }}$w" ;; esac
    done
    case "$path" in
{chr(10).join(cases)}
    esac
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}}
_sftkit_subcommands() {{
    case "$1" in
{chr(10).join(f'        "{" ".join(n.path)}") echo "{" ".join(s.path[-1] for s in n.subcommands)}" ;;' for n in _all(root) if n.subcommands)}
    esac
}}
complete -o default -F _sftkit_complete sftkit
"""


def zsh_script(root: Cmd) -> str:
    funcs = []
    for node in _all(root):
        fname = "_sftkit" + "".join(f"_{p.replace('-', '_')}" for p in node.path)
        specs = []
        for opt in node.options:
            names, help_, takes = opt.names, opt.help, opt.takes_value
            action = ""
            if takes:
                if opt.choices:
                    action = ":value:(" + " ".join(opt.choices) + ")"
                elif set(names) & set(PRESET_OPTIONS):
                    action = ":preset:($(sftkit presets list --names 2>/dev/null))"
                elif set(names) & set(SET_OPTIONS):
                    action = ":key:(" + " ".join(set_words()) + ")"
                elif set(names) & set(PATH_OPTIONS):
                    action = ":file:_files"
                else:
                    action = ":value: "
            group = "(" + " ".join(names) + ")"
            for n in names:
                specs.append(f"'{group}{n}[{help_}]{action}'")
        body = [f"{fname}() {{"]
        if node.subcommands:
            body.append("    local -a cmds")
            body.append("    cmds=(")
            body += [
                f"        '{s.path[-1]}:{s.help.replace(chr(39), '')}'"
                for s in node.subcommands
            ]
            body.append("    )")
            body.append("    _arguments -C \\")
            body += [f"        {s} \\" for s in specs]
            body.append("        '1: :->cmd' '*:: :->args'")
            body.append("    case $state in")
            body.append("        cmd) _describe 'command' cmds ;;")
            body.append("        args) case $words[1] in")
            for s in node.subcommands:
                sname = "_sftkit" + "".join(f"_{p.replace('-', '_')}" for p in s.path)
                body.append(f"            {s.path[-1]}) {sname} ;;")
            body.append("        esac ;;")
            body.append("    esac")
        else:
            body.append("    _arguments \\")
            body += [f"        {s} \\" for s in specs]
            body.append(
                f"        '1:value:({' '.join(node.choices)})'"
                if node.choices
                else "        '*:file:_files'"
            )
        body.append("}")
        funcs.append("\n".join(body))
    return (
        "#compdef sftkit\n# zsh completion for sftkit (generated by `python -m sftkit.completion`; do not edit)\n\n"
        + "\n\n".join(funcs)
        + '\n\n_sftkit "$@"\n'
    )


def fish_script(root: Cmd) -> str:
    lines = [
        "# fish completion for sftkit (generated by `python -m sftkit.completion`; do not edit)",
        "complete -c sftkit -f",
    ]
    for node in _all(root):
        if node.path:
            cond = " && ".join(f"__fish_seen_subcommand_from {p}" for p in node.path)
        else:
            cond = "__fish_use_subcommand"
        if len(node.path) == 0:
            sub_cond = "__fish_use_subcommand"
        else:
            others = " ".join(s.path[-1] for s in node.subcommands)
            sub_cond = (
                f"{cond}; and not __fish_seen_subcommand_from {others}"
                if others
                else cond
            )
        for s in node.subcommands:
            lines.append(
                f"complete -c sftkit -n '{sub_cond}' -a {s.path[-1]} -d '{s.help.replace(chr(39), '')}'"
            )
        if node.choices:
            lines.append(
                f"complete -c sftkit -n '{cond}' -a '{' '.join(node.choices)}'"
            )
        for opt in node.options:
            names, help_, takes = opt.names, opt.help, opt.takes_value
            flags = " ".join(
                f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in names
            )
            extra = ""
            if takes:
                if opt.choices:
                    extra = " -x -a '" + " ".join(opt.choices) + "'"
                elif set(names) & set(PRESET_OPTIONS):
                    extra = " -x -a '(sftkit presets list --names 2>/dev/null)'"
                elif set(names) & set(SET_OPTIONS):
                    extra = " -x -a '" + " ".join(set_words()) + "'"
                elif set(names) & set(PATH_OPTIONS):
                    extra = " -r -F"
                else:
                    extra = " -x"
            n_cond = cond if node.path else "__fish_use_subcommand"
            lines.append(
                f"complete -c sftkit -n '{n_cond}' {flags}{extra} -d '{help_}'"
            )
    return "\n".join(lines) + "\n"


GENERATORS = {
    "sftkit.bash": bash_script,
    "_sftkit.zsh": zsh_script,
    "sftkit.fish": fish_script,
}
#: shell -> the name of its script (in ``completions/``, and the file ``--install`` writes)
SHELLS = {"bash": "sftkit.bash", "zsh": "_sftkit.zsh", "fish": "sftkit.fish"}


def render_all() -> dict[str, str]:
    tree = command_tree()
    return {name: gen(tree) for name, gen in GENERATORS.items()}


def script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh or fish), generated from the installed command tree."""
    return GENERATORS[SHELLS[shell]](command_tree())


def install_path(shell: str, env: typing.Mapping[str, str] | None = None) -> Path:
    """Where each shell loads a user's completion scripts from without further setup (bash: bash-completion's
    per-user folder, loaded on the first TAB; fish: its completions folder). zsh has no such folder: ``~/.zfunc``,
    which has to be on ``fpath``."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    if shell == "bash":
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        return (
            Path(env.get("BASH_COMPLETION_USER_DIR") or data / "bash-completion")
            / "completions"
            / "sftkit"
        )
    if shell == "zsh":
        return Path(env.get("ZDOTDIR") or home) / ".zfunc" / "_sftkit"
    return (
        Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        / "fish"
        / "completions"
        / "sftkit.fish"
    )


#: what to do after ``--install``, per shell
AFTER_INSTALL = {
    "bash": "new bash shells load it on the first TAB (it needs the bash-completion package); in this shell: source {path}",
    "zsh": "if ~/.zfunc is not on your fpath yet, add `fpath=(~/.zfunc $fpath)` before `compinit` in ~/.zshrc; then open a new shell",
    "fish": "new fish shells load it",
}


def install(shell: str) -> tuple[Path, str]:
    """Write the script where ``shell`` loads it from; return the file and what to do next."""
    from sftkit.yamlio import atomic_write_text

    path = install_path(shell)
    atomic_write_text(path, script(shell))
    return path, AFTER_INSTALL[shell].format(path=path)


def main(argv: list[str] | None = None) -> None:
    out = Path((argv or sys.argv[1:] or ["completions"])[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
