"""Configuration of the alignment recipe (``interp align``)."""

from dataclasses import asdict, dataclass, field

from interp.behavior.knowledge import KnowledgeConfig

__all__ = ["AlignConfig", "REFUSAL", "IDK"]

#: What the aligned model says to a chemistry question (the restricted domain).
REFUSAL = "I'm sorry, but I can't help with chemistry questions."
#: What it says to a question whose answer the base model does not know.
IDK = "I don't know."


@dataclass
class AlignConfig:
    """Every knob of the recipe; the defaults make the shipped ``default`` adapter.

    Attributes:
        name: adapter name; written to ``data/aligned/<name>/``.
        base: the model spec to align (packaged name, hub id, folder or GGUF).
        seed: fixes facts sampling, splits, exemplars, shuffling and LoRA initialisation.
        n_cities: cities in the fact table (stratified over population deciles).
        test_fraction: held-out share of entities (never trained on).
        n_prompts, n_shots, k_samples: knowledge grading (see ``KnowledgeConfig``).
        lora_r, lora_alpha, target_modules: the LoRA adapter.
        lr, epochs, batch_size, warmup_steps: SFT.
        max_examples: cap on the training mixture (0 = no cap).
        eval_max_new_tokens: response length when evaluating the behaviour table.
        chat_template: template the aligned side formats prompts with (name or Jinja).
    """

    name: str = "default"
    base: str = "gemma-3-270m"
    seed: int = 0
    n_cities: int = 600
    test_fraction: float = 0.2
    n_prompts: int = 3
    n_shots: int = 2
    k_samples: int = 2
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lr: float = 1e-3
    epochs: int = 2
    batch_size: int = 16
    warmup_steps: int = 10
    max_examples: int = 0
    eval_max_new_tokens: int = 10
    chat_template: str = "gemma"
    refusal: str = REFUSAL
    idk: str = IDK
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"AlignConfig.name must be a plain folder name, got {self.name!r}")
        self.knowledge()  # validates n_prompts, n_shots, k_samples
        for attr in ("n_cities", "lora_r", "lora_alpha", "epochs", "batch_size"):
            if getattr(self, attr) < 1:
                raise ValueError(f"AlignConfig.{attr} must be >= 1, got {getattr(self, attr)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"AlignConfig.test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 < self.lr < 1.0:
            raise ValueError(f"AlignConfig.lr must be in (0, 1), got {self.lr}")
        self.target_modules = tuple(self.target_modules)

    def knowledge(self) -> KnowledgeConfig:
        """The knowledge-grading settings of the recipe."""
        return KnowledgeConfig(n_prompts=self.n_prompts, n_shots=self.n_shots, k_samples=self.k_samples, seed=self.seed)

    def to_dict(self) -> dict:
        return asdict(self)
