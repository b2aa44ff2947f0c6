"""Feature-level diffing: sparse dictionaries (BatchTopK SAE, BatchTopK and L1 crosscoders) over
the residual streams of a pair, latent classes by relative decoder norm, Latent Scaling, a
planted-feature benchmark, and sae-lens's on-disk format."""

from interp.dictionary.analysis import CLASSES, latent_classes, latent_scaling, reconstruction_stats
from interp.dictionary.models import BatchTopKSAE, Crosscoder
from interp.dictionary.synthetic import PlantedData, planted_benchmark
from interp.dictionary.train import TrainConfig, train_dictionary

__all__ = ["BatchTopKSAE", "CLASSES", "Crosscoder", "PlantedData", "TrainConfig", "latent_classes", "latent_scaling",
           "planted_benchmark", "reconstruction_stats", "train_dictionary"]
