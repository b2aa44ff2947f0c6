"""The project's alignment recipe: SFT with LoRA in Gemma's chat format (``interp align``)."""

from interp.align.config import IDK, REFUSAL, AlignConfig
from interp.align.mixture import build_mixture
from interp.align.recipe import RecipeResult, behavior_table, graded_facts, run_recipe
from interp.align.train import response_loss, sft_lora

__all__ = ["IDK", "REFUSAL", "AlignConfig", "RecipeResult", "behavior_table", "build_mixture", "graded_facts", "response_loss",
           "run_recipe", "sft_lora"]
