"""Training throughput: `sftkit train` vs TRL's own CLI (`trl sft` / `trl dpo`) vs a hand-written PyTorch loop.

Every side trains the same model on the same rows, each in its own process, one side after the other:

- Model: a 2-layer LlamaForCausalLM with SmolLM2-135M's shapes (49,152-token vocabulary, hidden 576, 9 heads,
  3 KV heads, intermediate 1536, tied embeddings), built from a config with a fixed seed and saved with the real
  SmolLM2 tokenizer (../shared/tokenizers/smollm2) into the work folder. Everything offline.
- Data: SFT/LoRA the shared LLaMA-Factory Alpaca demo (999 rows), DPO the shared DPO demo (300 rows); SmolLM2
  chat template, loss on the responses only, max length 256, batch 4 per step, no accumulation.
- Fixed on every side: steps, batch, max length, seed, learning rate, cosine schedule without warm-up, float32
  and no gradient checkpointing (TRL defaults to bf16 and checkpointing; ``--trl-defaults`` leaves them on),
  LoRA r 8 / alpha 16 / dropout 0 on q/k/v/o, DPO beta 0.1. The rest is each tool's default (optimizer kernel,
  padding, metrics computed per step, threads: OMP_NUM_THREADS is not set for the sides).
- Sides: ``sftkit``: ``python -m sftkit train --config <yaml> -o <dir> --overwrite``; ``trl``: ``trl sft`` /
  ``trl dpo`` on the same rows as conversational prompt/completion (preference) JSONL; ``loop``: this file in
  a child process, padding-free (a batch's rows concatenated, position_ids restarting, no attention mask),
  torch AdamW, the Trainer's seeded row order (SFT and LoRA only).

The CLI sides run exactly as a user runs them, plus a probe: a ``sitecustomize`` on PYTHONPATH that, when
TRAIN_THROUGHPUT_PROBE is set, patches transformers' Trainer in whichever process trains (``trl`` trains in a
child of ``accelerate launch``) to count, on every side alike, each trained batch's non-padding tokens
(attention-mask sum) and padded tokens (the tensor), each step's loss, torch's threads and the trainer's
settings. Time is the tool's ``train_runtime`` (the training loop, not start-up): sftkit's from
final_metrics.json, TRL's from ``Trainer.train``'s metrics (with save_strategy no TRL writes no
trainer_state.json); the loop times itself from creating the optimizer to the last step. ``steps tok/s``
divides by first forward to last optimizer step instead (leaving out set-up and end, e.g. sftkit's final
checkpoint). Peak RSS: the side's process tree, ``ru_maxrss`` from os.wait4. Repeats are interleaved.

Run from the project root (needs ../shared)::

    python benchmarks/train_throughput.py --mode sft --steps 30 --repeats 3 --json sft.json
    python benchmarks/train_throughput.py --mode lora --steps 30 --repeats 3 --json lora.json
    python benchmarks/train_throughput.py --mode dpo --steps 30 --repeats 3 --json dpo.json

Prints a Markdown section for docs/benchmarks.md (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
ALPACA = SHARED / "data" / "llamafactory" / "alpaca_en_demo.json"
DPO_DATA = SHARED / "data" / "llamafactory" / "dpo_en_demo.json"
TOKENIZER = SHARED / "tokenizers" / "smollm2"
MAX_LENGTH, BATCH, SEED, BETA = 256, 4, 42, 0.1
DPO_MAX_PROMPT = 128  # sftkit needs dpo.max_prompt_length < dpo.max_length; TRL has no such setting
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
SIDES = {"sft": ["sftkit", "trl", "loop"], "lora": ["sftkit", "trl", "loop"], "dpo": ["sftkit", "trl"]}
SETTINGS = ("optim", "bf16", "gradient_checkpointing", "padding_free", "include_num_input_tokens_seen", "logging_steps",
            "save_strategy", "precompute_ref_log_probs")
LAST = 10  # "final loss": mean loss of the last LAST steps


# -- inside the children ---------------------------------------------------------------------------


def install_probe(out: str) -> None:
    """Patch transformers' Trainer (see the module docstring) as soon as ``transformers.trainer`` is imported."""
    import importlib.abc
    import importlib.util

    class AfterImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "transformers.trainer":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _patch(module.Trainer, out)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, AfterImport())


def _patch(trainer_cls, out: str) -> None:
    import atexit

    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    rec: dict = {"tokens": 0, "padded": 0, "steps": 0, "losses": [], "first": None, "last": None}
    step, train = trainer_cls.training_step, trainer_cls.train

    def training_step(self, model, inputs, *a, **kw):
        rec["first"] = rec["first"] or time.perf_counter()
        ids, mask = inputs["input_ids"], inputs.get("attention_mask")
        rec["padded"] += ids.numel()
        rec["tokens"] += int(mask.sum()) if mask is not None else ids.numel()  # padding-free: no padding
        loss = step(self, model, inputs, *a, **kw)
        rec["losses"].append(loss.detach())
        return loss

    def train_(self, *a, **kw):
        values = {k: getattr(self.args, k) for k in SETTINGS if hasattr(self.args, k)}
        rec["settings"] = {k: str(getattr(v, "value", v)) for k, v in values.items()}  # enums by value
        result = train(self, *a, **kw)
        rec["metrics"] = {**result.metrics, "num_input_tokens_seen": self.state.num_input_tokens_seen}
        return result

    def optimizer_step(optimizer, args, kwargs):
        rec["steps"] += 1
        rec["last"] = time.perf_counter()

    def dump():
        if not rec["padded"]:
            return  # this process trained nothing (the `accelerate launch` parent, for one)
        losses = [float(x) for x in rec.pop("losses")]
        rec.update(losses=losses, steps_s=rec["last"] - rec["first"], threads=torch.get_num_threads())
        Path(out).write_text(json.dumps(rec))

    trainer_cls.training_step, trainer_cls.train = training_step, train_
    register_optimizer_step_post_hook(optimizer_step)
    atexit.register(dump)


def _encode(tok, row: dict) -> tuple[list[int], list[int]]:
    """Chat-template ids and completion-only labels, ending at the answer's <|im_end|> (as sftkit does)."""
    prompt = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False).removesuffix("\n")
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    return (p + c)[:MAX_LENGTH], ([-100] * len(p) + c)[:MAX_LENGTH]


def _loop(out: str, spec: dict) -> None:
    """The hand-written loop: padding-free batches, AdamW, cosine schedule, gradient clipping at 1.0."""
    import torch
    import transformers as tf

    tok = tf.AutoTokenizer.from_pretrained(spec["model"])
    seqs = [_encode(tok, json.loads(line)) for line in Path(spec["data"]).read_text(encoding="utf-8").splitlines()]
    torch.manual_seed(SEED)
    model = tf.AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    if spec["lora"]:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                          target_modules=LORA["target_modules"], task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    model.train()
    order = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(SEED)).tolist()  # = the Trainer's sampler
    started = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0)
    sched = tf.get_cosine_schedule_with_warmup(opt, 0, spec["steps"])
    losses, tokens, first = [], 0, None
    for s in range(spec["steps"]):
        batch = [seqs[order[(s * BATCH + k) % len(seqs)]] for k in range(BATCH)]
        ids = torch.tensor([t for b in batch for t in b[0]])[None]
        labels = torch.tensor([t for b in batch for t in [-100] + b[1][1:]])[None]  # nothing predicts a row's start
        pos = torch.cat([torch.arange(len(b[0])) for b in batch])[None]
        first = first or time.perf_counter()
        # no attention mask: transformers builds the packed-sequence mask, but only without a KV cache
        loss = model(input_ids=ids, position_ids=pos, labels=labels, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += ids.numel()
    end = time.perf_counter()
    settings = {"optim": "torch.optim.AdamW (defaults)", "padding_free": "True", "bf16": "False"}
    Path(out).write_text(json.dumps({"tokens": tokens, "padded": tokens, "steps": spec["steps"], "losses": losses,
                                     "runtime_s": end - started, "steps_s": end - first, "settings": settings,
                                     "threads": torch.get_num_threads()}))


# -- the benchmark ----------------------------------------------------------------------------------


def build_model(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER))
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=2,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    assert len(tok) <= config.vocab_size, len(tok)
    torch.manual_seed(SEED)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(folder)
    tok.save_pretrained(folder)


def write_trl_data(mode: str, folder: Path) -> Path:
    """The shared rows as TRL's conversational prompt/completion (or preference) JSONL, ``folder/train.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    if mode == "dpo":
        role = {"human": "user", "gpt": "assistant", "system": "system"}
        rows = [{"prompt": [{"role": role[t["from"]], "content": t["value"]} for t in r["conversations"]],
                 "chosen": [{"role": "assistant", "content": r["chosen"]["value"]}],
                 "rejected": [{"role": "assistant", "content": r["rejected"]["value"]}]}
                for r in json.loads(DPO_DATA.read_text(encoding="utf-8"))]
    else:
        rows = [{"prompt": [{"role": "user", "content": f"{r['instruction']}\n\n{r['input']}" if r["input"].strip() else r["instruction"]}],
                 "completion": [{"role": "assistant", "content": r["output"]}]}
                for r in json.loads(ALPACA.read_text(encoding="utf-8"))]
    (folder / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return folder


def sftkit_cmd(ns, model: Path, run: Path, cfg_path: Path) -> list[str]:
    cfg = {
        "trainer_type": "dpo" if ns.mode == "dpo" else "sft",
        "model": {"name": str(model), "max_seq_length": MAX_LENGTH},
        # no deduplication: TRL keeps duplicate rows, so both sides see the same rows in the same order
        "data": {"dataset": str(DPO_DATA if ns.mode == "dpo" else ALPACA), "template": "auto", "drop_duplicates": False},
        "train": {"batch_size": BATCH, "gradient_accumulation_steps": 1, "max_iters": ns.steps, "learning_rate": ns.lr,
                  "scheduler": "cosine", "warmup_steps": 0, "seed": SEED, "save_steps": 10**9, "use_cpu": True},
        "tracking": {"enabled": False},
    }
    if ns.mode == "lora":
        cfg["lora"] = {"enabled": True, **LORA}
    if ns.mode == "dpo":
        cfg["dpo"] = {"beta": BETA, "max_length": MAX_LENGTH, "max_prompt_length": DPO_MAX_PROMPT}
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")  # JSON is YAML
    return [sys.executable, "-m", "sftkit", "train", "--config", str(cfg_path), "-o", str(run), "--overwrite"]


def trl_cmd(ns, model: Path, run: Path, data: Path) -> list[str]:
    # --include_num_input_tokens_seen takes only true/false on TRL's command line ("all"/"no"): left at "no"
    cmd = [str(Path(sys.executable).with_name("trl")), "dpo" if ns.mode == "dpo" else "sft",
           "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir", str(run),
           "--max_length", str(MAX_LENGTH), "--per_device_train_batch_size", str(BATCH),
           "--gradient_accumulation_steps", "1", "--max_steps", str(ns.steps), "--learning_rate", str(ns.lr),
           "--lr_scheduler_type", "cosine", "--warmup_steps", "0", "--seed", str(SEED), "--save_strategy", "no",
           "--report_to", "none", "--use_cpu", "true"]
    if not ns.trl_defaults:
        cmd += ["--bf16", "false", "--gradient_checkpointing", "false"]
    if ns.mode == "dpo":
        cmd += ["--beta", str(BETA)]
    if ns.mode == "lora":
        cmd += ["--use_peft", "--lora_r", str(LORA["r"]), "--lora_alpha", str(LORA["alpha"]),
                "--lora_dropout", str(LORA["dropout"]), "--lora_target_modules", *LORA["target_modules"]]
    return cmd


def run_child(argv: list[str], log: Path, env: dict) -> dict:
    """Run ``argv`` with its output in ``log``; the peak RSS of its process tree (os.wait4)."""
    started = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SystemExit(f"failed ({proc.returncode}): {shlex.join(argv)}\n{tail}")
    return {"wall_s": time.perf_counter() - started, "peak_rss_mb": usage.ru_maxrss / 1024}


def run_side(side: str, ns, work: Path, model: Path, trl_data: Path, env: dict, r: int) -> dict:
    run, out, log = work / f"{side}-{r}", work / f"{side}-{r}.json", work / f"{side}-{r}.log"
    if side == "loop":
        spec = {"model": str(model), "data": str(trl_data / "train.jsonl"), "steps": ns.steps, "lr": ns.lr,
                "lora": ns.mode == "lora"}
        argv = [sys.executable, str(Path(__file__).resolve()), "_loop", str(out), json.dumps(spec)]
    else:
        argv = sftkit_cmd(ns, model, run, work / "sftkit.yaml") if side == "sftkit" else trl_cmd(ns, model, run, trl_data)
    probe = {} if side == "loop" else {"TRAIN_THROUGHPUT_PROBE": str(out)}  # the loop counts for itself
    child = run_child(argv, log, {**env, **probe})
    rec = json.loads(out.read_text())
    metrics = rec.pop("metrics", {})
    if side == "sftkit":
        metrics = json.loads((run / "final_metrics.json").read_text())
    if side != "loop":
        rec.update(runtime_s=metrics["train_runtime"], train_loss=metrics.get("train_loss"),
                   tool_tokens=metrics.get("num_input_tokens_seen"), tool_num_tokens=metrics.get("num_tokens"))
    if rec["steps"] != ns.steps:
        raise SystemExit(f"{side}: {rec['steps']} optimizer steps, expected {ns.steps} (see {log})")
    shown = ["python" if a == sys.executable else "trl" if a.endswith("/trl") else a for a in argv]
    rec.update(child, side=side, repeat=r, command=shlex.join(shown),
               tok_s=rec["tokens"] / rec["runtime_s"], steps_tok_s=rec["tokens"] / rec["steps_s"])
    return rec


def summarise(runs: list[dict], sides: list[str]) -> dict:
    out = {}
    for side in sides:
        rs = [r for r in runs if r["side"] == side]
        last = rs[-1]["losses"][-LAST:]
        out[side] = {
            "median_tok_s": statistics.median(r["tok_s"] for r in rs),
            "min_tok_s": min(r["tok_s"] for r in rs),
            "median_steps_tok_s": statistics.median(r["steps_tok_s"] for r in rs),
            "median_runtime_s": statistics.median(r["runtime_s"] for r in rs),
            "tokens": rs[-1]["tokens"],
            "padding_pct": 100 * (1 - rs[-1]["tokens"] / rs[-1]["padded"]),
            "final_loss": sum(last) / len(last),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "threads": sorted({r["threads"] for r in rs}),
            "settings": rs[-1]["settings"],
        }
    for s in out.values():
        for ref in ("trl", "loop"):
            s[f"vs_{ref}"] = s["median_tok_s"] / out[ref]["median_tok_s"] if ref in out else None
    return out


def machine() -> dict:
    def first(path: str, key: str) -> str:
        lines = Path(path).read_text().splitlines() if Path(path).exists() else []
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), "")

    versions = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "sftkit"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    mem_kb = first("/proc/meminfo", "MemTotal").split()
    return {"cpu": first("/proc/cpuinfo", "model name") or platform.processor(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)), "ram_gb": round(int(mem_kb[0]) / 1024**2, 1) if mem_kb else None,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "versions": versions}


def markdown(ns, info: dict, summary: dict, sides: list[str]) -> str:
    def ratio(x):
        return f"{x:.2f}x" if x is not None else "-"

    lines = [
        f"## Training throughput ({ns.mode}): `sftkit train` vs TRL's CLI vs a hand-written loop",
        "",
        f"Machine: {info['cores']} x {info['cpu']} ({info['usable_cores']} usable), {info['ram_gb']} GB RAM, no GPU; "
        f"load average {info['load_before'][0]:.2f} before, {info['load_after'][0]:.2f} after; OMP_NUM_THREADS "
        f"{info['OMP_NUM_THREADS'] or 'unset'}. " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
        f"{ns.steps} steps of batch {BATCH}, max length {MAX_LENGTH}, seed {SEED}, lr {ns.lr:g} cosine, float32, "
        f"{ns.repeats} interleaved repeats" + (" (TRL: its own bf16 and checkpointing defaults)" if ns.trl_defaults else "") + ":",
        "",
        "```",
        info["command"],
        "```",
        "",
        "| side | median tok/s | min tok/s | steps tok/s | padding % | final loss | peak RSS MB | threads | vs trl | vs loop |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        s = summary[side]
        lines.append(f"| {side} | {s['median_tok_s']:,.0f} | {s['min_tok_s']:,.0f} | {s['median_steps_tok_s']:,.0f} | "
                     f"{s['padding_pct']:.1f} | {s['final_loss']:.4f} | {s['peak_rss_mb']:,.0f} | "
                     f"{'/'.join(map(str, s['threads']))} | {ratio(s['vs_trl'])} | {ratio(s['vs_loop'])} |")
    notes = (f"tok/s: non-padding tokens of the trained batches / the tool's train_runtime; steps tok/s: over first "
             f"forward to last optimizer step; final loss: mean of the last {LAST} steps (last repeat). As run:")
    lines += ["", notes]
    lines += [f"- {side}: " + ", ".join(f"{k} {v}" for k, v in summary[side]["settings"].items()) for side in sides]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 3 and sys.argv[1] == "_loop":
        _loop(sys.argv[2], json.loads(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(SIDES), default="sft")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sides", default=None, help="comma-separated, of sftkit,trl,loop (default: all the mode has)")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--trl-defaults", action="store_true", help="leave TRL's bf16 and gradient checkpointing defaults on")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (run folders, logs)")
    ns = parser.parse_args()
    sides = ns.sides.split(",") if ns.sides else SIDES[ns.mode]
    if unknown := [s for s in sides if s not in SIDES[ns.mode]]:
        parser.error(f"--mode {ns.mode} has the sides {','.join(SIDES[ns.mode])}, not {','.join(unknown)}")
    if not (ALPACA.exists() and DPO_DATA.exists() and TOKENIZER.exists()):
        print(f"needs {ALPACA}, {DPO_DATA} and {TOKENIZER} (the shared material next to the project)", file=sys.stderr)
        return 1
    info = machine()
    info["command"] = "python " + shlex.join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    tmp = None if ns.keep else tempfile.TemporaryDirectory(prefix="train-throughput-")
    work = (ns.keep or Path(tmp.name)).resolve()
    (work / "probe").mkdir(parents=True, exist_ok=True)
    (work / "probe" / "sitecustomize.py").write_text(  # installs the probe in every Python process of a side
        "import os, sys\nif os.environ.get('TRAIN_THROUGHPUT_PROBE'):\n"
        f"    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "    import train_throughput\n    sys.path.pop(0)\n"
        "    train_throughput.install_probe(os.environ['TRAIN_THROUGHPUT_PROBE'])\n")
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    os.environ.update(offline)
    pythonpath = os.pathsep.join(filter(None, [str(work / "probe"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_DATASETS_CACHE": str(work / "hf-datasets"), "NO_COLOR": "1", "PYTHONPATH": pythonpath}
    model = work / "model"
    build_model(model)
    trl_data = write_trl_data(ns.mode, work / "trl-data")
    info["load_before"] = os.getloadavg()
    runs = []
    for r in range(ns.repeats):
        for side in sides:
            runs.append(rec := run_side(side, ns, work, model, trl_data, env, r))
            print(f"repeat {r} {side}: {rec['tok_s']:,.0f} tok/s ({rec['tokens']} tokens in {rec['runtime_s']:.2f} s), "
                  f"peak RSS {rec['peak_rss_mb']:,.0f} MB, {rec['threads']} threads", file=sys.stderr)
    info["load_after"] = os.getloadavg()
    summary = summarise(runs, sides)
    print(markdown(ns, info, summary, sides))
    if ns.json:
        raw = {"machine": info, "mode": ns.mode, "steps": ns.steps, "repeats": ns.repeats, "lr": ns.lr,
               "trl_defaults": ns.trl_defaults, "summary": summary, "runs": runs}
        ns.json.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
