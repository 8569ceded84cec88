"""`sftkit generate`."""

# No `from __future__ import annotations` here: typer reads the parameters' annotations, and string annotations
# would be compiled and evaluated (twice) each time the help is built; as objects they cost nothing more.

import json
import sys
from collections import deque
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Optional

import typer

from sftkit.cli.options import RunOrModelArg, TemplateOpt, naming_flags
from sftkit.sampling import DEFAULT_BATCH_SIZE, DEFAULTS

BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Prompts generated together (left-padded).")]

#: the sampling settings' flags, for library errors that name the setting
SAMPLING_FLAGS = {name: "--" + name.replace("_", "-") for name in ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "batch_size")}
#: the one setting a prompt too long for the model names (only that: other errors then may quote row fields)
LENGTH_FLAG = {"max_new_tokens": SAMPLING_FLAGS["max_new_tokens"]}

TEXT_HELP = "text: one response per line, with newlines written as \\n, carriage returns as \\r and backslashes as \\\\"


def generate(
    model: RunOrModelArg,
    prompts: Annotated[
        Optional[list[str]],
        typer.Argument(help="Prompts. None given: one per line from stdin (or rows with --input-format jsonl).", metavar="PROMPT", show_default=False),
    ] = None,
    input_file: Annotated[
        Optional[Path],
        typer.Option("--input", "-i", help="Read prompts from this file instead of stdin (.txt: one per line; .jsonl, .json, .csv, .parquet: rows).", dir_okay=False),
    ] = None,
    input_format: Annotated[
        Literal["text", "jsonl"],
        typer.Option("--input-format", help="text: each line is a prompt; jsonl: each line is a row in any format `prepare` knows (the prompt is the row without its answer)."),
    ] = "text",
    output_format: Annotated[
        Literal["text", "jsonl"],
        typer.Option("--output-format", help=f"{TEXT_HELP}; jsonl: each input row (or {{\"prompt\": ...}}) with the response added."),
    ] = "text",
    response_key: Annotated[str, typer.Option("--response-key", help="The field jsonl output puts the response in.")] = "response",
    template: TemplateOpt = None,
    batch_size: BatchSizeOpt = DEFAULT_BATCH_SIZE,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Most tokens generated per response.")] = DEFAULTS.max_new_tokens,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0 decodes greedily (the default); above 0 samples.")] = DEFAULTS.temperature,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling: keep the smallest token set with this probability.")] = DEFAULTS.top_p,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Sample among the k most likely tokens (0: no limit).")] = DEFAULTS.top_k,
    repetition_penalty: Annotated[float, typer.Option("--repetition-penalty", min=0.0, help="Above 1.0 discourages repeating tokens.")] = DEFAULTS.repetition_penalty,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for sampling, to make it repeatable.")] = None,
    chat: Annotated[bool, typer.Option("--chat", help="An interactive multi-turn conversation (/reset clears it, /exit quits).")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Print responses, tokens and tokens/s on stderr at the end.")] = False,
) -> None:
    """Generate responses with a trained run or model; only responses go to stdout, in input order.

    Prompts come from the arguments, else from --input or stdin (one per line). The template the run trained with is applied (from its metadata). On a terminal a single prompt is streamed as it is generated.
    """
    from sftkit import api
    from sftkit.console import console, stdout_write
    from sftkit.errors import EXIT_USAGE, SftkitError
    from sftkit.sampling import GenerationStats, SamplingOptions

    options = SamplingOptions(max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed)
    with naming_flags(SAMPLING_FLAGS):
        options.check()
    if chat and (prompts or input_file):
        raise SftkitError("--chat takes its prompts interactively, not from arguments or --input", exit_code=EXIT_USAGE)
    if not chat and not prompts and input_file is None and sys.stdin.isatty():
        raise SftkitError("no prompts given", hint="pass prompts as arguments, pipe them on stdin (one per line), use --input FILE, or --chat", exit_code=EXIT_USAGE)
    if input_file is not None and not input_file.is_file():
        from sftkit.errors import DataError

        raise DataError(f"input file not found: {input_file}", hint="check the path given to --input")
    from sftkit.progress import task

    with task(console, f"loading {model}"):
        loaded = api.load(model, template=template)
    if chat:
        _chat(loaded, options, console, stdout_write, model)
        return
    records = _records(prompts, input_file, input_format)
    if prompts and len(prompts) == 1 and output_format == "text" and input_format == "text" and sys.stdout.isatty():
        with naming_flags(LENGTH_FLAG):
            for piece in loaded.stream(prompts[0], options):
                stdout_write(piece)
        stdout_write("\n")
        return
    pending: deque[tuple[Any, str]] = deque()

    def prompts_in_order() -> Iterator[Any]:
        for record, prompt, where in records:
            if output_format == "jsonl" and isinstance(record, dict) and response_key in record:
                raise SftkitError(
                    f"{where}: the row already has a {response_key!r} field, which the response would replace",
                    hint="name the output field with --response-key, e.g. --response-key generated",
                    exit_code=EXIT_USAGE,
                )
            pending.append((record, where))
            yield prompt

    counted = GenerationStats()
    done = 0  # responses written: the n-th prompt (from 1) is pending[n - 1 - done]

    def where(n: int) -> str:
        return pending[n - 1 - done][1]

    # the LoadedModel itself (api.Model wraps it): its generate_iter names a prompt too long for the model by `where`
    # ... and that error's hint names --max-new-tokens; progress goes to stderr, only responses to stdout
    with naming_flags(LENGTH_FLAG), task(console, "generating", total=len(prompts) if prompts else None, unit="responses") as shown:
        for response in loaded.generate_iter(prompts_in_order(), batch_size=batch_size, options=options, stats=counted, where=where):
            record, _ = pending.popleft()
            done += 1
            shown.advance()
            if output_format == "jsonl":
                row = record if isinstance(record, dict) else {"prompt": record}
                stdout_write(json.dumps({**row, response_key: response}, ensure_ascii=False) + "\n")
            else:
                stdout_write(escape_line(response) + "\n")
    if stats:
        s = counted
        console.print(
            f"[dim]{s.prompts} responses, {s.new_tokens} new tokens in {s.seconds:.2f} s of generation: {s.tokens_per_second:.1f} tokens/s (batch size {batch_size})[/]"
        )


def escape_line(text: str) -> str:
    """One response as one line: backslash, newline and carriage return escaped as \\\\, \\n and \\r."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _records(prompts: list[str] | None, input_file: Path | None, input_format: str) -> Iterator[tuple[Any, Any, str]]:
    """(what the output keeps, the prompt, where it came from) for each input, read lazily and in order."""
    from sftkit.prompts import row_prompt

    if prompts:
        lines: Iterator[tuple[str, str]] = ((p, f"argument {i}") for i, p in enumerate(prompts, 1))
    elif input_file is not None and _is_rows_file(input_file):
        yield from _file_rows(input_file)
        return
    elif input_file is not None:
        lines = _lines(_open_text(input_file), str(input_file))
    else:
        lines = _lines(getattr(sys.stdin, "buffer", sys.stdin), "stdin")
    for text, where in lines:
        if input_format == "text":
            yield text, text, where
            continue
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            from sftkit.errors import DataError

            raise DataError(f"{where}: not valid JSON ({e.msg} at column {e.colno})", hint="--input-format jsonl takes one JSON object per line") from None
        yield row, row_prompt(row, where), where


def _lines(stream: Any, name: str) -> Iterator[tuple[str, str]]:
    """(line, "name:N") for each line; a binary stream is decoded line by line, so bytes that are not UTF-8 are
    reported with their line (a text stream would have replaced them, or failed on a later chunk)."""
    for n, line in enumerate(stream, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                from sftkit.errors import DataError

                raise DataError(
                    f"{name} line {n} is not UTF-8 text (byte 0x{line[e.start]:02x} at column {e.start + 1})",
                    hint="prompts are read as UTF-8 text: convert the input first (e.g. with iconv)",
                ) from None
        yield line.rstrip("\r\n"), f"{name}:{n}"


def _open_text(path: Path) -> Any:
    """The file opened for :func:`_lines` (as bytes: each line is decoded there, naming a line that is not UTF-8)."""
    from sftkit.errors import DataError

    try:
        return open(path, "rb")  # noqa: SIM115 - read lazily, closed at exit
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None


def _is_rows_file(path: Path) -> bool:
    from sftkit.data.readers import DATA_SUFFIXES

    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in DATA_SUFFIXES


def _file_rows(path: Path) -> Iterator[tuple[Any, Any, str]]:
    from sftkit.data.sources import read_rows
    from sftkit.errors import DataError
    from sftkit.prompts import row_prompt

    for row in read_rows(path):
        if row.error is not None:
            raise DataError(f"{row.where}: {row.error}")
        yield row.data, row_prompt(row.data, row.where), row.where


def _chat(loaded: Any, options: Any, console: Any, write: Any, name: str) -> None:
    session = loaded.chat(options)
    console.print(f"[dim]chatting with {name}: /reset starts over, /exit (or Ctrl-D) quits[/]")
    while True:
        try:
            text = console.input("[bold cyan]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        command = text.strip()
        if command in ("/exit", "/quit"):
            return
        if command == "/reset":
            session.reset()
            console.print("[dim]conversation cleared[/]")
            continue
        if command.startswith("/") and " " not in command:
            console.print("[dim]commands: /reset starts over, /exit quits[/]")
            continue
        if not command:
            continue
        for piece in session.send(text):
            write(piece)
        write("\n")
