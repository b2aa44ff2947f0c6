"""Arithmetic with known errors, for error-awareness probes.

- :func:`arithmetic_statements`: "23 + 45 = 68" (label 1) / "23 + 45 = 69" (label 0), with the
  operand size controlled by ``digits`` (the noisy-nudge prediction: small numbers are well
  learned, large ones are not).
- :func:`multistep_solutions`: a chain of steps ("Start with 17. Add 25: 17 + 25 = 42. ...") with
  exactly one injected error at a known step (later steps are computed correctly from the wrong
  value, as a model's own slip would propagate), and its correct twin. One row per written step:
  ``text`` ends at the end of that step and ``label`` is 1 if that step is the wrong one, so a
  probe can be asked "was the step just written wrong?".

Example:
    >>> from interp.data.arithmetic import arithmetic_statements
    >>> ds = arithmetic_statements(n=4, digits=(1,))
    >>> len(ds)
    4
"""

import operator
import random
from collections.abc import Sequence

import datasets

from interp.data.schema import make_dataset, stable_id

__all__ = ["arithmetic_statements", "multistep_solutions"]

_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
_WORDS = {"+": "Add", "-": "Subtract", "*": "Multiply by"}


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)


def _wrong(rng: random.Random, value: int) -> tuple[int, str]:
    """A plausible wrong result and the kind of slip."""
    kind = rng.choice(["off_by_one", "off_by_ten", "digit_swap", "random"])
    if kind == "off_by_one":
        return value + rng.choice([-1, 1]), kind
    if kind == "off_by_ten":
        return value + rng.choice([-10, 10]), kind
    if kind == "digit_swap" and abs(value) >= 10:
        s = str(abs(value))
        i = rng.randrange(len(s) - 1)
        swapped = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        if swapped != s:
            return int(swapped) * (1 if value >= 0 else -1), kind
    delta = rng.randint(2, max(3, abs(value) // 3 + 2))
    return value + rng.choice([-delta, delta]), "random"


def arithmetic_statements(
    n: int = 1000,
    *,
    digits: Sequence[int] = (1, 2, 3),
    ops: str = "+-*",
    error_rate: float = 0.5,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> datasets.Dataset:
    """``n`` statements "a op b = c", a share ``error_rate`` of them with a wrong ``c``.

    Extra columns: ``a``, ``b``, ``op``, ``digits``, ``shown`` (the result written), ``true_result``,
    ``error_kind`` ("" when correct). ``answer`` is the true result, ``subject`` the left-hand side.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
    bad_ops = [o for o in ops if o not in _OPS]
    if bad_ops or not ops:
        raise ValueError(f"ops must be drawn from '+-*', got {ops!r}")
    if not digits or any(d < 1 or d > 6 for d in digits):
        raise ValueError(f"digits must be in 1..6, got {list(digits)}")
    rng = random.Random(seed)
    rows, seen = [], set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n:
            raise ValueError(f"cannot draw {n} distinct statements with digits={list(digits)}, ops={ops!r}; ask for fewer")
        d, op = rng.choice(list(digits)), rng.choice(ops)
        a, b = _operand(rng, d), _operand(rng, d)
        if (a, op, b) in seen:
            continue
        seen.add((a, op, b))
        true = _OPS[op](a, b)
        wrong = rng.random() < error_rate
        shown, kind = _wrong(rng, true) if wrong else (true, "")
        lhs = f"{a} {op} {b}"
        # "3 + 4" and "4 + 3" are one fact: the entity is canonical for commutative operators, so the
        # two never fall on both sides of an entity-disjoint split.
        entity = f"{min(a, b)} {op} {max(a, b)}" if op in "+*" else lhs
        rows.append({
            "id": stable_id("arith", a, op, b, shown), "text": f"{lhs} = {shown}", "label": int(shown == true),
            "subject": lhs, "answer": str(true), "entity": entity, "a": a, "b": b, "op": op, "digits": d,
            "shown": shown, "true_result": true, "error_kind": kind,
        })
    return make_dataset(rows, source="interp.arithmetic", splits=True, test_fraction=test_fraction, seed=seed)


def multistep_solutions(
    n: int = 200, *, steps: int = 4, digits: int = 2, seed: int = 0, test_fraction: float = 0.2
) -> datasets.Dataset:
    """``n`` problems, each written twice (correct, and with one wrong step), one row per step.

    Extra columns: ``problem`` (id shared by both versions), ``version`` ("correct"/"corrupted"),
    ``step_index`` (0-based), ``mistake_index`` (-1 for the correct version), ``n_steps``.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    rng = random.Random(seed)
    rows = []
    for p in range(n):
        start = _operand(rng, digits)
        plan = [(rng.choice("+-*" if s else "+-"), _operand(rng, 1 if rng.random() < 0.5 else digits)) for s in range(steps)]
        plan = [(op, max(2, x) if op == "*" else x) for op, x in plan]
        mistake = rng.randrange(steps)
        problem = stable_id("multistep", seed, p)
        question = f"Start with {start}. " + " ".join(f"{_WORDS[op]} {x}." for op, x in plan) + " What is the result?"
        for version in ("correct", "corrupted"):
            value, text = start, f"Question: {question}\nSolution:"
            for s, (op, x) in enumerate(plan):
                result = _OPS[op](value, x)
                is_wrong = version == "corrupted" and s == mistake
                if is_wrong:
                    result = _wrong(rng, result)[0]
                text += f" Step {s + 1}: {value} {op} {x} = {result}."
                rows.append({
                    "id": stable_id(problem, version, s), "text": text, "label": int(is_wrong),
                    "subject": f"{value} {op} {x}", "answer": str(_OPS[op](value, x)), "entity": problem,
                    "problem": problem, "version": version, "step_index": s,
                    "mistake_index": mistake if version == "corrupted" else -1, "n_steps": steps,
                })
                value = result
    return make_dataset(rows, source="interp.arithmetic.multistep", splits=True, test_fraction=test_fraction, seed=seed)
