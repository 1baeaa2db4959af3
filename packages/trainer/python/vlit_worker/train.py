"""One rank of a Vlit recipe stage under torchrun.

The TypeScript side (``trainWithTorchrun`` in ``@vlit/trainer/node``) has already done everything that
must agree with Vlit's local engine: encoded the data (ids, labels, attention mask, image spans, pixel
tensors) into safetensors shards, fixed the data order (which samples form each optimiser step),
resolved the recipe's trainables and per-parameter optimiser settings against the model's tensor
names. This worker only runs the math with the reference implementations: transformers' model class
for the checkpoint folder, peft's LoRA, torch's AdamW, transformers' lr schedules, DDP for the
gradient all-reduce.

Loss: the sum of token cross-entropies over the whole global batch divided by its trained-token count
(transformers' ``num_items_in_batch`` rule), so the loss and gradients do not depend on how the
global batch is cut into ranks and micro-batches.
"""
from __future__ import annotations

import bisect
import json
import math
import os
import secrets
import sys
import time
import traceback
from contextlib import nullcontext
from typing import Any

FORMAT = "vlit-torchrun-job"
EVENT_PREFIX = "@@vlit "


class RankLog:
    """Every line goes to this rank's log file and to stdout with a ``[rank N]`` prefix."""

    def __init__(self, log_dir: str, rank: int) -> None:
        os.makedirs(log_dir, exist_ok=True)
        self.rank = rank
        self.file = open(os.path.join(log_dir, f"rank-{rank}.log"), "a", buffering=1, encoding="utf-8")

    def __call__(self, message: str) -> None:
        for line in str(message).splitlines() or [""]:
            self.file.write(line + "\n")
            sys.stdout.write(f"[rank {self.rank}] {line}\n")
        self.file.flush()
        sys.stdout.flush()


def emit(event: dict[str, Any]) -> None:
    """A machine-readable line for the launcher (progress callback, metrics)."""
    sys.stdout.write(EVENT_PREFIX + json.dumps(event, allow_nan=False, default=float) + "\n")
    sys.stdout.flush()


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class Shards:
    """Random access to the encoded samples of the job's safetensors shards, one sample at a time."""

    def __init__(self, shards: list[dict[str, Any]]) -> None:
        from safetensors import safe_open

        self.files = []
        self.first = []
        for s in shards:
            h = safe_open(s["file"], framework="pt")
            keys = set(h.keys())
            self.files.append(
                {
                    "h": h,
                    "keys": keys,
                    "offsets": h.get_tensor("sample_offsets").tolist(),
                    "image_offsets": h.get_tensor("image_offsets").tolist() if "image_offsets" in keys else None,
                    "spans": h.get_tensor("image_spans").tolist() if "image_spans" in keys else [],
                }
            )
            self.first.append(int(s["first"]))
        for f in self.files:
            by_sample: dict[int, list[tuple[int, int, int]]] = {}
            for sample, image, start, end in f["spans"]:
                by_sample.setdefault(int(sample), []).append((int(image), int(start), int(end)))
            f["by_sample"] = by_sample

    def get(self, index: int) -> dict[str, Any]:
        k = bisect.bisect_right(self.first, index) - 1
        f = self.files[k]
        local = index - self.first[k]
        a, b = f["offsets"][local], f["offsets"][local + 1]
        h = f["h"]
        sample: dict[str, Any] = {
            "input_ids": h.get_slice("input_ids")[a:b],
            "labels": h.get_slice("labels")[a:b],
            "attention_mask": h.get_slice("attention_mask")[a:b],
            "spans": sorted(f["by_sample"].get(local, []), key=lambda s: s[1]),
            "images": None,
        }
        if f["image_offsets"] is not None:
            ia, ib = f["image_offsets"][local], f["image_offsets"][local + 1]
            sample["image_key"] = "pixel_values"
            sample["images"] = h.get_slice("pixel_values")[ia:ib] if ib > ia else None
        return sample


def collate(samples: list[dict[str, Any]], job: dict[str, Any], image_token_id: int | None, device: Any) -> dict[str, Any]:
    """Right-pad a micro-batch; image positions get the model's image token; images in span order."""
    import torch

    T = max(int(s["input_ids"].shape[0]) for s in samples)
    B = len(samples)
    ids = torch.full((B, T), int(job["padTokenId"]), dtype=torch.long)
    labels = torch.full((B, T), int(job["ignoreIndex"]), dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    images = []
    key = None
    for row, s in enumerate(samples):
        n = int(s["input_ids"].shape[0])
        ids[row, :n] = s["input_ids"]
        labels[row, :n] = s["labels"]
        mask[row, :n] = s["attention_mask"]
        for image, start, end in s["spans"]:
            if image_token_id is not None:
                ids[row, start:end] = image_token_id
            images.append(s["images"][image])
            key = s["image_key"]
    batch: dict[str, Any] = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
    if images:
        batch[key] = torch.stack(images).to(device)
    return batch


def token_loss_sum(model: Any, batch: dict[str, Any], ignore_index: int) -> tuple[Any, int]:
    """Sum of next-token cross-entropies (labels aligned with ids, shifted here as transformers does)."""
    import torch

    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if "pixel_values" in batch:
        kwargs["pixel_values"] = batch["pixel_values"]
    logits = model(**kwargs).logits.float()
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = batch["labels"][:, 1:].reshape(-1)
    loss = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=ignore_index, reduction="sum")
    return loss, int((shift_labels != ignore_index).sum())


def trained_tokens(sample: dict[str, Any], ignore_index: int) -> int:
    return int((sample["labels"][1:] != ignore_index).sum())


def load_model(job: dict[str, Any]) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(job["modelDir"])
    if getattr(config, "model_type", "") == "llava":
        from transformers import LlavaForConditionalGeneration

        cls = LlavaForConditionalGeneration
    else:
        try:
            from transformers import AutoModelForImageTextToText

            cls = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
        except ImportError:
            cls = AutoModelForCausalLM
    return cls.from_pretrained(job["modelDir"], dtype=torch.float32)


def apply_trainables(model: Any, job: dict[str, Any], log: RankLog) -> tuple[Any, dict[str, Any]]:
    """Freeze all, then train exactly the names the TS side resolved; LoRA on exactly its modules.

    Returns the (maybe peft-wrapped) model and {vlit name: parameter} of what trains, where a LoRA
    factor's Vlit name is ``<module>.lora_A.weight`` / ``.lora_B.weight``.
    """
    import torch

    names = set(n for n, _ in model.named_parameters())
    want = set(job["tensorNames"])
    missing = sorted(n for n in want if n not in names and n not in dict(model.named_buffers()))
    if missing:
        raise ValueError(f"the model built by transformers has no tensor named {missing[:5]} (Vlit resolved the recipe against names transformers does not use)")
    trainables = job["trainables"]
    lora = trainables["lora"]
    if lora:
        from peft import LoraConfig, get_peft_model

        r0, a0 = lora[0]["r"], lora[0]["alpha"]
        dropouts = {t["dropout"] for t in lora}
        rslora = {bool(t["useRslora"]) for t in lora}
        if len(dropouts) > 1 or len(rslora) > 1:
            raise ValueError("peft takes one lora_dropout and one use_rslora per adapter; the recipe's LoRA rules differ in them")
        config = LoraConfig(
            r=r0,
            lora_alpha=a0,
            lora_dropout=dropouts.pop(),
            use_rslora=rslora.pop(),
            # Full module paths: exactly the modules Vlit resolved (a bare 'q_proj' would also hit the vision tower).
            target_modules=[t["module"] for t in lora],
            rank_pattern={t["module"]: t["r"] for t in lora if t["r"] != r0},
            alpha_pattern={t["module"]: t["alpha"] for t in lora if t["alpha"] != a0},
            bias="none",
        )
        # Same seed right before adapter creation, so lora_A's init is a function of the recipe seed only.
        torch.manual_seed(int(job["seed"]))
        model = get_peft_model(model, config)
    for p in model.parameters():
        p.requires_grad_(False)
    params = dict(model.named_parameters())
    prefix = "base_model.model." if lora else ""
    out: dict[str, Any] = {}
    for name in trainables["trained"]:
        p = params.get(prefix + name)
        if p is None:
            # peft keeps a wrapped layer's base weight at <module>.base_layer.weight.
            module, _, leaf = name.rpartition(".")
            p = params.get(f"{prefix}{module}.base_layer.{leaf}")
        if p is None:
            raise ValueError(f"trained tensor {name} is not a parameter of the model")
        p.requires_grad_(True)
        out[name] = p
    for t in lora:
        for f in ("lora_A", "lora_B"):
            p = params[f"{prefix}{t['module']}.{f}.default.weight"]
            p.requires_grad_(True)
            out[f"{t['module']}.{f}.weight"] = p
    log(f"training {len(out)} tensors ({sum(p.numel() for p in out.values())} values), LoRA on {len(lora)} modules")
    return model, out


def make_optimizer(job: dict[str, Any], trained: dict[str, Any]) -> tuple[Any, Any, list[str]]:
    import torch
    from transformers import get_scheduler

    opt = job["optimizer"]
    settings = {p["name"]: p for p in opt["params"]}
    order = [n for n in settings if n in trained]
    if set(order) != set(trained):
        raise ValueError(f"optimizer settings and trained tensors differ: {sorted(set(trained) ^ set(order))[:5]}")
    groups = [{"params": [trained[n]], "lr": settings[n]["lr"], "weight_decay": settings[n]["weightDecay"], "vlit_name": n} for n in order]
    optimizer = torch.optim.AdamW(groups, lr=groups[0]["lr"], betas=tuple(opt["betas"]), eps=opt["eps"], weight_decay=0.0)
    s = job["schedule"]
    kwargs = {"num_cycles": s["numCycles"]} if s["type"] == "cosine" else {}
    scheduler = get_scheduler(s["type"], optimizer, num_warmup_steps=s["warmupSteps"], num_training_steps=s["totalSteps"], scheduler_specific_kwargs=kwargs)
    return optimizer, scheduler, order


def save_file_atomic(tensors: dict[str, Any], path: str, metadata: dict[str, str]) -> int:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, path, metadata=metadata)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    return os.path.getsize(path)


def write_checkpoint(job: dict[str, Any], step: int, trained: dict[str, Any], optimizer: Any, order: list[str], extra: dict[str, Any]) -> str:
    """The layout of Vlit's writeRunCheckpoint (model / optimizer safetensors, trainer_state.json last, atomic rename)."""
    run_dir = job["runDir"]
    final = os.path.join(run_dir, f"checkpoint-{step}")
    if os.path.isdir(final):
        return final
    tmp = os.path.join(run_dir, f".checkpoint-{step}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    os.makedirs(tmp)
    files: dict[str, int] = {}
    files["model.safetensors"] = save_file_atomic(trained, os.path.join(tmp, "model.safetensors"), {"format": "pt"})
    import torch

    state: dict[str, Any] = {}
    by_param = {id(g["params"][0]): g["vlit_name"] for g in optimizer.param_groups}
    for p, st in optimizer.state.items():
        name = by_param[id(p)]
        state[f"{name}.exp_avg"] = st["exp_avg"].reshape(-1)
        state[f"{name}.exp_avg_sq"] = st["exp_avg_sq"].reshape(-1)
        state[f"{name}.step"] = torch.tensor(float(st["step"]), dtype=torch.float32)
    files["optimizer.safetensors"] = save_file_atomic(state, os.path.join(tmp, "optimizer.safetensors"), {"format": "vlit-adamw-state", "version": "1"})
    plan = job["steps"][step - 1]
    trainer_state = {
        "format": "vlit-run-checkpoint",
        "version": 1,
        "step": step,
        "stage": job["stageIndex"],
        "scheduleStep": step,
        "data": plan["position"],
        "rng": None,
        "recipeHash": job["recipeHash"],
        "files": files,
        "extra": extra,
    }
    with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(trainer_state, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.rename(tmp, final)
    keep = job.get("keepLast")
    if keep:
        import shutil

        done = sorted(
            (int(d.split("-")[1]) for d in os.listdir(run_dir) if d.startswith("checkpoint-") and d.split("-")[1].isdigit()),
        )
        for old in done[: max(0, len(done) - max(1, int(keep)))]:
            shutil.rmtree(os.path.join(run_dir, f"checkpoint-{old}"), ignore_errors=True)
    return final


def load_checkpoint(path: str, job: dict[str, Any], trained: dict[str, Any], optimizer: Any, scheduler: Any) -> int:
    import torch
    from safetensors.torch import load_file

    with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as fh:
        state = json.load(fh)
    if state["recipeHash"] != job["recipeHash"]:
        raise ValueError(f"checkpoint {path} belongs to another recipe")
    weights = load_file(os.path.join(path, "model.safetensors"))
    with torch.no_grad():
        for name, p in trained.items():
            p.copy_(weights[name].reshape(p.shape))
    opt_state = load_file(os.path.join(path, "optimizer.safetensors"))
    for g in optimizer.param_groups:
        name, p = g["vlit_name"], g["params"][0]
        if f"{name}.step" in opt_state:
            optimizer.state[p] = {
                "step": torch.tensor(float(opt_state[f"{name}.step"])),
                "exp_avg": opt_state[f"{name}.exp_avg"].reshape(p.shape).clone(),
                "exp_avg_sq": opt_state[f"{name}.exp_avg_sq"].reshape(p.shape).clone(),
            }
    step = int(state["scheduleStep"])
    # LambdaLR has no closed form to load: set its counter and the groups' lr as step() would have.
    for g, lam in zip(optimizer.param_groups, scheduler.lr_lambdas):
        g["lr"] = g["initial_lr"] * lam(step)
    scheduler.last_epoch = step
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    return int(state["step"])


def save_output(job: dict[str, Any], model: Any, trained: dict[str, Any], log: RankLog) -> dict[str, str]:
    out_dir = job["outputDir"]
    os.makedirs(out_dir, exist_ok=True)
    result: dict[str, str] = {}
    if job["trainables"]["lora"]:
        adapter = os.path.join(out_dir, "adapter")
        model.save_pretrained(adapter)
        result["adapter"] = adapter
        plain = {n: p for n, p in trained.items() if ".lora_A." not in n and ".lora_B." not in n}
        if plain:
            # LLaVA's own LoRA script keeps the non-LoRA trained tensors (the projector) beside the adapter the same way.
            save_file_atomic(plain, os.path.join(adapter, "non_lora_trainables.safetensors"), {"format": "pt"})
        model = model.merge_and_unload()
    merged = os.path.join(out_dir, "model")
    model.save_pretrained(merged)
    result["model"] = merged
    log(f"saved {', '.join(f'{k}: {v}' for k, v in result.items())}")
    return result


def run(job: dict[str, Any], log: RankLog) -> None:
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    reporter = local_rank == 0
    device = torch.device(f"cuda:{local_rank}") if job["backend"] == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(int(job["seed"]))
    log(f"rank {rank} of {world} pid {os.getpid()} host {os.uname().nodename} device {device} torch {torch.__version__}")

    model = load_model(job)
    model, trained = apply_trainables(model, job, log)
    model.to(device)
    model.train()
    fsdp = job["strategy"] == "fsdp"
    if fsdp:
        if job.get("resumeFrom"):
            raise ValueError("resuming an FSDP run is not supported yet (its checkpoints are not written)")
        # FSDP2 (fully_shard): runs on CPU/gloo as well as GPUs; each transformer block is one shard unit.
        from torch.distributed.fsdp import fully_shard

        param_names = {id(p): n for n, p in model.named_parameters()}
        by_vlit = {v: param_names[id(p)] for v, p in trained.items()}
        for m in list(model.modules()):
            if type(m).__name__.endswith(("DecoderLayer", "EncoderLayer")):
                fully_shard(m)
        fully_shard(model)
        # fully_shard swaps parameters for DTensor shards: look the trained ones up again by name.
        now = dict(model.named_parameters())
        trained = {v: now[n] for v, n in by_vlit.items()}
        wrapped = model
    else:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # A trained tower has layers past LLaVA's feature layer that get no gradient: DDP must look for them.
        wrapped = DDP(
            model,
            device_ids=[local_rank] if device.type == "cuda" else None,
            find_unused_parameters=bool(job.get("findUnusedParameters", False)),
        )
    optimizer, scheduler, order = make_optimizer(job, trained)
    start = 0
    if job.get("resumeFrom"):
        start = load_checkpoint(job["resumeFrom"], job, trained, optimizer, scheduler)
        log(f"resumed from {job['resumeFrom']} at step {start}")

    shards = Shards(job["shards"])
    image_token_id = getattr(model.config, "image_token_id", getattr(model.config, "image_token_index", None))
    ignore = int(job["ignoreIndex"])
    params = list(trained.values())
    clip = job["clipGradNorm"]
    total = len(job["steps"])
    metrics_file = os.path.join(job["runDir"], "metrics.jsonl") if rank == 0 else None
    if reporter:
        emit({"event": "start", "rank": rank, "world": world, "step": start, "totalSteps": total})

    for step in range(start, total):
        t0 = time.perf_counter()
        plan = job["steps"][step]
        samples = plan["samples"]
        mine = samples[rank::world]
        loaded = [shards.get(i) for i in mine]
        # Every rank knows the global batch, so the normaliser needs no extra collective.
        n_tokens = sum(trained_tokens(shards.get(i), ignore) for i in samples) if world > 1 else sum(trained_tokens(s, ignore) for s in loaded)
        micro = [loaded[k : k + job["batchSize"]] for k in range(0, len(loaded), job["batchSize"])]
        loss_sum = torch.zeros((), dtype=torch.float64)
        tokens = 0
        for k, mb in enumerate(micro):
            batch = collate(mb, job, image_token_id, device)
            last = k == len(micro) - 1
            if fsdp:
                wrapped.set_requires_gradient_sync(last)
            with nullcontext() if last or fsdp else wrapped.no_sync():
                loss, _ = token_loss_sum(wrapped, batch, ignore)
                # DDP averages gradients over ranks: scale back by world so the result is sum / N.
                (loss * (world / max(n_tokens, 1))).backward()
            loss_sum += loss.detach().double().cpu()
            tokens += int(batch["attention_mask"].sum())
        if not micro:
            raise ValueError(f"rank {rank} got no samples at step {step + 1}: the global batch is smaller than the world size")
        total_loss = loss_sum.to(device)
        dist.all_reduce(total_loss)
        tok = torch.tensor(float(tokens), device=device)
        dist.all_reduce(tok)
        loss_value = float(total_loss) / max(n_tokens, 1)
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        dt = max(time.perf_counter() - t0, 1e-9)
        record = {
            "step": done,
            "loss": finite(loss_value),
            "lr": lr,
            "gradNorm": finite(float(norm)),
            "tokensPerSecond": float(tok) / dt,
            "samplesPerSecond": len(samples) / dt,
            "epoch": plan.get("epoch", 0),
            "stage": job["stageName"],
        }
        if metrics_file:
            with open(metrics_file, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        if reporter:
            emit({"event": "step", "totalSteps": total, **record})
        log(f"step {done}/{total} loss {loss_value:.6f} lr {lr:.3e} grad_norm {float(norm):.4f}")
        every = job.get("checkpointEvery")
        if every and done % every == 0 and done < total and reporter and job["strategy"] != "fsdp":
            path = write_checkpoint(job, done, trained, optimizer, order, {"loss": finite(loss_value), "worldSize": world})
            emit({"event": "checkpoint", "step": done, "dir": path})
            log(f"checkpoint {path}")
        # Keep ranks in step so a checkpoint is complete before any rank moves on (and a dead peer is noticed here).
        dist.barrier()

    if fsdp:
        # Gather every shard (a collective: all ranks), then save through an unsharded copy of the model.
        full = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().cpu() for k, v in model.state_dict().items()}
        if reporter:
            model = load_model(job)
            model, trained = apply_trainables(model, job, log)
            model.load_state_dict(full)
    if reporter:
        saved = save_output(job, model.cpu() if device.type == "cuda" else model, trained, log)
        emit({"event": "done", "step": total, **saved})
    dist.barrier()


def describe(model_dir: str, out: str) -> int:
    """Write the model's parameter names and shapes as transformers names them in memory (the names
    recipes match), so the TS side resolves trainables against exactly what this worker will see."""
    model = load_model({"modelDir": model_dir})
    info = {
        "modelType": getattr(model.config, "model_type", None),
        "parameters": [{"name": n, "shape": list(p.shape)} for n, p in model.named_parameters()],
        "imageTokenId": getattr(model.config, "image_token_id", getattr(model.config, "image_token_index", None)),
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--describe":
        return describe(argv[1], argv[2])
    if len(argv) != 1:
        sys.stderr.write("usage: python -m vlit_worker <job.json> | --describe <model_dir> <out.json>\n")
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    if job.get("format") != FORMAT:
        sys.stderr.write(f"{argv[0]} is not a {FORMAT} file\n")
        return 2
    import torch
    import torch.distributed as dist

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rank = int(os.environ.get("RANK", "0"))
    log = RankLog(os.path.join(job["runDir"], "logs"), rank)
    try:
        dist.init_process_group(backend=job["backend"])
        run(job, log)
        dist.destroy_process_group()
        return 0
    except BaseException as err:  # noqa: BLE001 - every failure must reach this rank's log before exit
        log(f"FAILED: {type(err).__name__}: {err}")
        log(traceback.format_exc())
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:
            emit({"event": "failed", "rank": rank, "error": f"{type(err).__name__}: {err}"})
        return 1
