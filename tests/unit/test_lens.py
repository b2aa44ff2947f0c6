import pytest
import torch

from interp import encode, load_model
from interp.lens import logit_lens


def test_last_layer_of_the_lens_is_the_model_output(tiny_gemma_dir):
    model = load_model(str(tiny_gemma_dir), device="cpu")
    batch = encode(model.tokenizer, ["the fox sat on", "a cat"])
    with torch.inference_mode():
        logits = model(batch.input_ids, attention_mask=batch.attention_mask)[torch.arange(2), batch.positions["last"]]
    top = logits.argmax(-1).tolist()
    frame = logit_lens(model, batch, top)
    last = frame[frame.layer == model.cfg.n_layers - 1]
    assert last["rank"].tolist() == [1, 1]  # decoding the last layer is the model's own prediction
    probs = torch.softmax(logits, -1)[torch.arange(2), torch.tensor(top)]
    assert torch.allclose(torch.tensor(last["prob"].tolist()), probs, atol=1e-5)
    assert set(frame.layer) == set(range(model.cfg.n_layers))
    with pytest.raises(ValueError, match="1 answer ids for 2 prompts"):
        logit_lens(model, batch, [3])
