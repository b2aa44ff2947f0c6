"""Supervised fine-tuning with LoRA, loss on the response tokens only.

The unembedding over a 262k vocabulary dominates a small model's cost, so the body runs on the
whole sequence and the unembedding only at the positions whose next token is a response token.
"""

import random
import time
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from interp.align.config import AlignConfig
from interp.chat_formats import format_of
from interp.prompts import encode, format_prompt
from interp.runtime import arch_of, body_forward, final_logits, input_device

__all__ = ["tokenize_examples", "sft_lora", "response_loss"]


def tokenize_examples(tokenizer: Any, examples: list[dict], end_of_turn: str | None = None) -> list[tuple[list[int], int]]:
    """``(token ids, number of prompt tokens)`` per example: chat prompt + response + end of turn
    (default: the end-of-turn token of the tokenizer's chat format, see :mod:`interp.chat_formats`)."""
    if end_of_turn is None:
        fmt = format_of(tokenizer)
        if fmt is None:
            raise ValueError("tokenize_examples: the tokenizer's chat template is not a registered format; "
                             "pass end_of_turn= (the token that ends an assistant turn)")
        end_of_turn = fmt.end_of_turn[0]
    out = []
    for ex in examples:
        prompt = format_prompt(ex["question"], style="chat", tokenizer=tokenizer)
        ids = encode(tokenizer, [prompt]).input_ids[0].tolist()
        resp = tokenizer(ex["response"] + end_of_turn, add_special_tokens=False)["input_ids"]
        out.append((ids + list(resp), len(ids)))
    return out


def response_loss(causal_lm: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the tokens where ``target_mask`` is 1, unembedding only there."""
    arch = arch_of(causal_lm)
    hidden = body_forward(arch, input_ids, attention_mask, position_ids=None)
    pick = target_mask[:, 1:].bool()
    logits = final_logits(arch, hidden[:, :-1][pick])
    return F.cross_entropy(logits.float(), input_ids[:, 1:][pick])


def _batch(seqs: list[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    target = torch.zeros_like(ids)
    for i, (s, n_prompt) in enumerate(seqs):  # right padding for training
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        target[i, n_prompt: len(s)] = 1
    return ids, mask, target


def sft_lora(model: Any, tokenizer: Any, examples: list[dict], cfg: AlignConfig, *, progress: bool = True) -> tuple[Any, dict]:
    """Fine-tune a LoRA adapter on ``examples``; returns the peft model and a training log."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=list(cfg.target_modules),
                      task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    peft_model.train()
    causal_lm = peft_model.base_model.model
    seqs = tokenize_examples(tokenizer, examples)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    steps_per_epoch = (len(seqs) + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)) * max(0.0, 1 - s / max(1, total))
    )
    rng = random.Random(cfg.seed)
    losses, start = [], time.perf_counter()
    bar = tqdm(total=total, desc="align: SFT (LoRA)", unit="step", disable=not progress)
    for _ in range(cfg.epochs):
        order = list(range(len(seqs)))
        rng.shuffle(order)
        for b in range(0, len(order), cfg.batch_size):
            ids, mask, target = _batch([seqs[i] for i in order[b: b + cfg.batch_size]], pad)
            device = input_device(causal_lm)  # the batch goes where the model is (was left on the CPU)
            ids, mask, target = ids.to(device), mask.to(device), target.to(device)
            loss = response_loss(causal_lm, ids, mask, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(round(loss.item(), 5))
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    peft_model.eval()
    log = {"steps": total, "examples": len(seqs), "loss_curve": losses, "seconds": round(time.perf_counter() - start, 1),
           "trainable_params": sum(p.numel() for p in params)}
    return peft_model, log
