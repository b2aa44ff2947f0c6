"""Every data-parallel analysis on a tiny model; rank 0 saves the results (compared across process counts).

``python tests/parallel_worker.py MODEL_DIR OUT.pt`` runs it in one process;
``torchrun --nproc-per-node 2 tests/parallel_worker.py MODEL_DIR OUT.pt`` splits the work over 2 ranks.
"""

import sys

import torch

from interp import ModelSpec, distributed, load_model
from interp.behavior import generate
from interp.patching import clean_activations, clean_resid_pre, head_sweep, hook_sweep, logit_diff, resid_pre_sweep
from interp.prompts import encode
from interp.unmask.learn import answer_nll

TEXTS = ["a b c d e", "q r s", "x y z w v u", "m n", "k l m n o p q", "t u v", "e f g h", "b c"]


def main(model_dir: str, out: str) -> None:
    torch.manual_seed(0)
    model = load_model(ModelSpec(model_dir), device="cpu", dtype=torch.float32)
    tok = model.tokenizer
    clean, corrupt = encode(tok, TEXTS[5:] + TEXTS[4:5]), encode(tok, TEXTS[4:])  # same width
    ids = tok(["\u2581a", "\u2581b", "\u2581c", "\u2581d"], add_special_tokens=False)["input_ids"]
    metric = logit_diff([i[0] for i in ids], [i[-1] for i in ids[::-1]])
    values = clean_resid_pre(model, clean)
    got = {
        "resid_pre_packed": resid_pre_sweep(model, corrupt, values, metric),
        "resid_pre_replicated": resid_pre_sweep(model, corrupt, values, metric, packed=False, max_batch=8),
        "resid_pre_one_cell": resid_pre_sweep(model, corrupt, values, metric,
                                              positions=corrupt.position("last").unsqueeze(0)),
        "attn_out": hook_sweep(model, corrupt, clean_activations(model, clean, "attn_out"), metric, kind="attn_out"),
        "mlp_out_replicated": hook_sweep(model, corrupt, clean_activations(model, clean, "mlp_out"), metric,
                                         kind="mlp_out", packed=False),
        "heads": head_sweep(model, corrupt, clean_activations(model, clean, "z"), metric),
        "greedy": generate(model, TEXTS * 3, max_new_tokens=5, batch_size=4),
        "sampled": generate(model, TEXTS * 2, max_new_tokens=4, batch_size=3, do_sample=True, num_samples=2, seed=3),
        "answer_nll": answer_nll(model, TEXTS, ["a", "b c", "d", "e f g", "h", "i", "j k", "l"], batch_size=3),
    }
    if distributed.is_main():
        torch.save({k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in got.items()}, out)
    distributed.barrier()


if __name__ == "__main__":
    main(*sys.argv[1:])
