"""Behaviour: generation, answer classification, knowledge categories."""

from interp.behavior.answers import CLASSES, classify, is_correct, is_idk, is_refusal, normalize
from interp.behavior.confidence import answer_logprobs
from interp.behavior.generate import generate
from interp.behavior.knowledge import CATEGORIES, KnowledgeConfig, category_of, grade_knowledge, greedy_answers

__all__ = [
    "CATEGORIES", "CLASSES", "KnowledgeConfig", "answer_logprobs", "category_of", "classify", "generate", "grade_knowledge",
    "greedy_answers",
    "is_correct", "is_idk", "is_refusal", "normalize",
]
