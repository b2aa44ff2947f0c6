"""Prompt baselines: the same aligned model, a different prompt (same interface as
:mod:`interp.unmask.interventions`)."""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from interp.models import ModelPair
from interp.prompts import format_prompt
from interp.unmask.interventions import Intervention

__all__ = ["Prefill", "FewShot", "few_shot_exemplars", "few_shot_formatter"]


@dataclass
class _PromptBaseline(Intervention):
    """The aligned model unchanged; the prompt it sees changes (no activation-space rank)."""

    @property
    def rank(self) -> None:
        return None

    @property
    def changes_prompt(self) -> bool:
        return True


@dataclass
class Prefill(_PromptBaseline):
    """The aligned model's response opened with ``prefix`` (after Qi et al. 2024); the
    continuation is judged."""

    prefix: str = "Sure! The answer is"

    def __post_init__(self) -> None:
        self.method = "prefill"

    @property
    def setting(self) -> str:
        return repr(self.prefix)

    def format(self, pair: ModelPair, questions: Sequence[str]) -> list[str]:
        return [p + self.prefix for p in super().format(pair, questions)]


@dataclass
class FewShot(_PromptBaseline):
    """The aligned model given the base's plain few-shot prompt (``Q: ... A: ...`` exemplars)
    instead of its chat template; register each question's ``(question, answer)`` exemplars with
    :meth:`with_shots`."""

    def __post_init__(self) -> None:
        self.method = "few_shot"
        self._by_question: dict[str, list] = {}

    @property
    def setting(self) -> str:
        return f"{max((len(s) for s in self._by_question.values()), default=0)} exemplars"

    def with_shots(self, questions: Sequence[str], shots: Sequence[Sequence[tuple[str, str]]]) -> "FewShot":
        """Register the exemplars of more questions."""
        self._by_question.update({q: list(s) for q, s in zip(questions, shots)})
        return self

    def format(self, pair: ModelPair, questions: Sequence[str]) -> list[str]:
        missing = [q for q in questions if q not in self._by_question]
        if missing:
            raise ValueError(f"FewShot has no exemplars for {len(missing)} questions (e.g. {missing[0]!r}); call with_shots first")
        return [format_prompt(q, style="plain", few_shot=self._by_question[q]) for q in questions]


def few_shot_exemplars(table: pd.DataFrame, questions: pd.DataFrame, n_shots: int = 2, seed: int = 0) -> list[list[tuple[str, str]]]:
    """Per question, ``n_shots`` ``(question, answer)`` exemplars of the same relation from the
    train facts (seeded by the question's text, so a question gets the same exemplars in any
    list; never the question itself)."""
    train = table[table.split == "train"]
    out = []
    for rel, text in zip(questions.relation, questions.text):
        pool = train[(train.relation == rel) & (train.text != text)]
        if len(pool) < n_shots:
            pool = train[train.text != text]
        pick = pool.sample(n_shots, random_state=(seed + zlib.crc32(text.encode())) % 2**32)
        out.append(list(zip(pick.text, pick.answer)))
    return out


def few_shot_formatter(table: pd.DataFrame, n_shots: int = 2, seed: int = 0) -> Callable[[Sequence[str]], list[str]]:
    """``questions -> prompts``: the base's plain few-shot format with :func:`few_shot_exemplars`."""
    by_text = table.drop_duplicates("text").set_index("text")

    def fmt(questions):
        frame = by_text.loc[list(questions)].reset_index()
        return [format_prompt(q, style="plain", few_shot=shots)
                for q, shots in zip(frame.text, few_shot_exemplars(table, frame, n_shots, seed))]

    return fmt
