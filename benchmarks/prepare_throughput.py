"""Data-preparation throughput: `sftkit` prepare vs the tokenisation TRL's SFTTrainer does itself.

Both sides get the same rows (the shared Alpaca demo, 999 rows) and the same tokenizer (the real SmolLM2
one, with its chat template) and produce completion-only labels:

- sftkit: ``prepare_data`` end to end (read the file, detect the format, clean, render the chat template,
  tokenise, mask, save the prepared folder). Timed with ``overwrite=True`` so nothing is reused.
- TRL: an ``SFTTrainer`` built on a small ``LlamaForCausalLM`` (random weights, from a config) with the
  same rows as a conversational prompt/completion dataset (``completion_only_loss`` default); only the
  time spent inside ``SFTTrainer._prepare_dataset`` (chat template, tokenisation, labels, truncation) is
  counted, not model setup. This is TRL's own preprocessing, in memory, nothing saved.

The script also checks that both produce the same training sequences (TRL keeps the chat template's
newline after the final ``<|im_end|>``, sftkit ends the sequence at the EOS) and the same trained tokens.

Run from the project root (needs ../shared)::

    python benchmarks/prepare_throughput.py --repeats 3

Prints a Markdown table (and ``--json`` for machines).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
DATA = SHARED / "data" / "llamafactory" / "alpaca_en_demo.json"
TOKENIZER = SHARED / "tokenizers" / "smollm2"
MAX_LENGTH = 1024


def sftkit_run(tokenizer, num_proc: int | None, workdir: Path) -> dict:
    from sftkit.data.prepare import prepare_data
    from sftkit.resolve import resolve_config

    sets = [
        f"data.dataset={DATA}",
        "data.validation_split=null",
        f"model.max_seq_length={MAX_LENGTH}",
        "data.drop_duplicates=false",  # TRL does not deduplicate: keep the work identical
    ]
    if num_proc:
        sets.append(f"data.num_proc={num_proc}")
    cfg = resolve_config(preset="tiny", sets=sets).config
    started = time.perf_counter()
    prepared = prepare_data(cfg, tokenizer=tokenizer, output=workdir / "sftkit", overwrite=True)
    seconds = time.perf_counter() - started
    ids = prepared.train["input_ids"]
    return {"seconds": seconds, "rows": len(ids), "tokens": sum(map(len, ids)), "dataset": prepared.train}


def trl_run(tokenizer, num_proc: int | None, workdir: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    rows = json.loads(DATA.read_text(encoding="utf-8"))

    def user(r):
        return f"{r['instruction']}\n\n{r['input']}" if r["input"].strip() else r["instruction"]

    dataset = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": user(r)}], "completion": [{"role": "assistant", "content": r["output"]}]}
            for r in rows
        ]
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=MAX_LENGTH,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    args = SFTConfig(
        output_dir=str(workdir / "trl"),
        max_length=MAX_LENGTH,
        dataset_num_proc=num_proc,
        report_to="none",
        use_cpu=True,
        shuffle_dataset=False,
    )
    timings: list[float] = []
    original = SFTTrainer._prepare_dataset

    def timed(self, *a, **kw):
        started = time.perf_counter()
        try:
            return original(self, *a, **kw)
        finally:
            timings.append(time.perf_counter() - started)

    SFTTrainer._prepare_dataset = timed
    try:
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    finally:
        SFTTrainer._prepare_dataset = original
    prepared = trainer.train_dataset
    ids = prepared["input_ids"]
    return {"seconds": sum(timings), "rows": len(ids), "tokens": sum(map(len, ids)), "dataset": prepared}


def agreement(ours, theirs, newline_id: int) -> dict:
    """Rows where sftkit's ids/labels equal TRL's once TRL's trailing newline is removed."""
    same_ids = same_labels = 0
    for a_ids, a_lab, b_ids, b_lab in zip(ours["input_ids"], ours["labels"], theirs["input_ids"], theirs["labels"]):
        if b_ids and b_ids[-1] == newline_id:
            b_ids, b_lab = b_ids[:-1], b_lab[:-1]
        same_ids += a_ids == b_ids
        same_labels += a_lab == b_lab
    return {"rows": len(ours), "same_input_ids": same_ids, "same_labels": same_labels}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-proc", type=int, nargs="*", default=[1, 2], help="process counts to measure (1 = in process)")
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    if not DATA.exists() or not TOKENIZER.exists():
        print(f"needs {DATA} and {TOKENIZER} (the shared material next to the project)", file=sys.stderr)
        return 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets.utils.logging import disable_progress_bar

    from sftkit.modeling import load_tokenizer

    disable_progress_bar()
    tokenizer = load_tokenizer(str(TOKENIZER))
    results = []
    last: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for num_proc in ns.num_proc:
            n = num_proc if num_proc > 1 else None
            for name, fn in (("sftkit prepare", sftkit_run), ("TRL SFTTrainer", trl_run)):
                fn(tokenizer, n, workdir)  # warm-up: imports, first-call costs
                runs = [fn(tokenizer, n, workdir) for _ in range(ns.repeats)]
                secs = statistics.median(r["seconds"] for r in runs)
                rows, tokens = runs[0]["rows"], runs[0]["tokens"]
                results.append(
                    {
                        "tool": name,
                        "num_proc": num_proc,
                        "seconds_median": round(secs, 3),
                        "seconds_all": [round(r["seconds"], 3) for r in runs],
                        "rows": rows,
                        "tokens": tokens,
                        "rows_per_s": round(rows / secs, 1),
                        "tokens_per_s": round(tokens / secs),
                    }
                )
                last[name] = runs[-1]["dataset"]
        newline = tokenizer("\n", add_special_tokens=False)["input_ids"][-1]
        check = agreement(last["sftkit prepare"], last["TRL SFTTrainer"], newline)
    import datasets
    import tokenizers
    import torch
    import transformers
    import trl

    env = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "datasets": datasets.__version__,
        "tokenizers": tokenizers.__version__,
    }
    if ns.json:
        print(json.dumps({"results": results, "agreement": check, "environment": env}, indent=2))
        return 0
    print("| tool | num_proc | median s | rows | tokens | rows/s | tokens/s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['tool']} | {r['num_proc']} | {r['seconds_median']} | {r['rows']} | {r['tokens']} | {r['rows_per_s']} | {r['tokens_per_s']} |")
    print(f"\nagreement (TRL's trailing newline removed): {check}")
    print(f"environment: {env}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
