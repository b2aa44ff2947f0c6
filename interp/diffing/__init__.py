"""Model diffing: what changed between base and aligned, where, and how much.

- :func:`knowledge_by_popularity` — SliCK categories per popularity bin + logistic fit ("noisy nudge");
- :func:`response_shift` — per-position KL(aligned || base) and token-shift ranks over the aligned
  model's own responses (shallow alignment);
- :func:`representation_similarity` — per-layer cosine and linear CKA of the residual streams;
- :func:`weight_deltas` — per weight matrix, the norm and spectrum of the difference.

Each returns a result object with ``to_frame()``, ``figure()`` and a notebook view.
"""

from interp.diffing.popularity import PopularityResult, grade_pair, knowledge_by_popularity, logistic_fit
from interp.diffing.represent import SimilarityResult, linear_cka, representation_similarity
from interp.diffing.shallow import SHIFT_CLASSES, ShiftResult, response_shift
from interp.diffing.weights import WeightDeltaResult, effective_rank, singular_values, weight_deltas

__all__ = [
    "PopularityResult", "SHIFT_CLASSES", "ShiftResult", "SimilarityResult", "WeightDeltaResult", "effective_rank", "grade_pair",
    "knowledge_by_popularity", "linear_cka", "logistic_fit", "representation_similarity", "response_shift",
    "singular_values", "weight_deltas",
]
