"""Loaders for published datasets, each returning the interp schema (see :mod:`interp.data.schema`).

Each takes a local path (a file or the folder holding the files); errors name the file, the row
and the field. Where a dataset is on the Hugging Face hub in the same layout, passing the hub id
instead of a path downloads it (users with internet; never needed in tests).

==========================  ==========================================================  ======
loader                      rows                                                        label
==========================  ==========================================================  ======
load_geometry_of_truth      one per statement (cities, neg_cities, larger_than, ...)    1 true
load_refusal                one per instruction (harmful_*.json 1, harmless_*.json 0)   1 harmful
load_advbench               one per goal, ``answer`` = the target completion            1
load_gsm8k                  one per question, ``answer`` = final number                 -1
load_gsm8k_solutions        one per (question, model): real model solutions             1 correct
load_big_bench_mistake      one per step up to the first mistake                        1 wrong step
load_truthfulqa             one per (question, candidate answer)                        1 correct
load_entity_questions       one per question (per relation file)                        -1
load_relations              one per (subject, object) sample                            -1
load_rome_known             one per known fact                                          -1
==========================  ==========================================================  ======
"""

import os
import re
from pathlib import Path

import datasets

from interp.data.schema import (
    DataError, make_dataset, parse_label, read_csv, read_json, read_jsonl, require, stable_id,
)

__all__ = [
    "load_geometry_of_truth", "load_refusal", "load_advbench", "load_gsm8k", "load_gsm8k_solutions",
    "load_big_bench_mistake", "load_truthfulqa", "load_entity_questions", "load_relations",
    "load_rome_known", "ENTITY_QUESTION_TEMPLATES",
]

PathLike = str | os.PathLike
_RESERVED = {"id", "text", "subject", "answer", "entity", "source", "split", "popularity"}


def _file(path: PathLike, suffixes: tuple[str, ...]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found; pass the path of the dataset file")
    if not p.name.endswith(suffixes):
        raise DataError(f"{p}: unknown format {p.suffix or '(none)'!r}; expected {' or '.join(suffixes)}")
    return p


#: Subjects of geometry-of-truth files without a subject column: the Spanish word of the translation
#: sets, the company of ``companies_true_false`` (the text before its fixed predicates).
_GOT_SUBJECTS = (
    re.compile(r"^The Spanish word '(?P<s>[^']+)'"),
    re.compile(r"^(?P<s>.+?) (?:is a holding company|is an? |is the world's |has headquarters in |operates (?:in|as) |engages in |"
               r"provides |produces )"),
)


def _got_subject(text: str) -> str:
    for pattern in _GOT_SUBJECTS:
        m = pattern.match(text)
        if m:
            return m.group("s")
    return ""


def load_geometry_of_truth(path: PathLike, *, test_fraction: float = 0.2, seed: int = 0) -> datasets.Dataset:
    """A geometry-of-truth CSV (``statement,label`` + per-set extras). ``entity`` is the subject, so
    a subject's true and false variants stay on one side of the split: the ``city``, the unordered
    ``n1``/``n2`` pair, the Spanish word (``sp_en_trans``), the company (``companies_true_false``);
    the statement itself where no subject is found (``common_claim_true_false``)."""
    p = _file(path, (".csv",))
    rows = []
    for i, r in enumerate(read_csv(p, ["statement", "label"])):
        text = require(r, "statement", str(p), i)
        if "city" in r:
            subject, entity, answer = r["city"], r["city"], r.get("correct_country", "")
        elif "n1" in r and "n2" in r:
            subject, entity, answer = r["n1"], "-".join(sorted([r["n1"], r["n2"]])), ""
        else:
            subject = _got_subject(text)
            entity, answer = subject or text, ""
        extras = {k: str(v) for k, v in r.items() if k not in ("statement", "label") and k not in _RESERVED}
        rows.append({"id": stable_id(p.stem, i, text), "text": text, "label": parse_label(r["label"], (0, 1), str(p), i),
                     "subject": subject, "entity": entity, "answer": answer, **extras})
    return make_dataset(rows, source=f"geometry_of_truth/{p.stem}", where=str(p), splits=True,
                        test_fraction=test_fraction, seed=seed)


def load_refusal(path: PathLike) -> datasets.Dataset:
    """refusal_direction splits: a ``harmful_*.json`` / ``harmless_*.json`` file, or the folder
    holding them (all files, ``split`` from the file name, ``label`` 1 harmful / 0 harmless)."""
    p = Path(path)
    files = sorted(p.glob("harm*_*.json")) if p.is_dir() else [_file(p, (".json",))]
    if not files:
        raise DataError(f"{p}: no harmful_*.json or harmless_*.json files in this folder")
    rows = []
    for f in files:
        kind, _, split = f.stem.partition("_")
        if kind not in ("harmful", "harmless") or not split:
            raise DataError(f"{f}: file name must be harmful_<split>.json or harmless_<split>.json")
        data = read_json(f)
        if not isinstance(data, list) or not data:
            raise DataError(f"{f}: expected a non-empty JSON list of {{instruction, category}}")
        for i, r in enumerate(data):
            text = require(r, "instruction", str(f), i)
            rows.append({"id": stable_id(f.stem, i), "text": text, "label": int(kind == "harmful"), "entity": text,
                         "split": split, "category": str(r.get("category") or "")})
    return make_dataset(rows, source="refusal_direction", where=str(p))


def load_advbench(path: PathLike) -> datasets.Dataset:
    """AdvBench ``harmful_behaviors`` CSV (``goal,target``)."""
    p = _file(path, (".csv",))
    rows = [{"id": stable_id("advbench", i), "text": require(r, "goal", str(p), i), "answer": require(r, "target", str(p), i),
             "label": 1, "entity": r["goal"]} for i, r in enumerate(read_csv(p, ["goal", "target"]))]
    return make_dataset(rows, source="advbench", where=str(p))


def _gsm8k_final(answer: str, where: str, i: int) -> str:
    m = re.search(r"####\s*(.+?)\s*$", answer)
    if m is None:
        m = re.search(r"A:\s*(.+?)\s*$", answer)
    if m is None:
        raise DataError(f"{where}: row {i}: field 'answer' has no final '#### <number>' line")
    return m.group(1).replace(",", "")


def load_gsm8k(path: PathLike) -> datasets.Dataset:
    """GSM8K ``test.jsonl`` / ``train.jsonl`` (``question``, ``answer`` with ``<<expr=result>>``);
    ``answer`` is the final number, ``solution`` the worked answer; or hub id ``openai/gsm8k``."""
    if not Path(path).exists() and str(path) == "openai/gsm8k":  # pragma: no cover - needs internet
        raw = list(datasets.load_dataset("openai/gsm8k", "main", split="test"))
        where = "openai/gsm8k"
    else:
        p = _file(path, (".jsonl",))
        raw, where = read_jsonl(p), str(p)
    rows = []
    for i, r in enumerate(raw):
        q, a = require(r, "question", where, i), require(r, "answer", where, i)
        rows.append({"id": stable_id("gsm8k", i, q), "text": q, "answer": _gsm8k_final(a, where, i), "entity": q,
                     "solution": a, "n_steps": len([ln for ln in a.splitlines() if ln.strip() and not ln.startswith("####")])})
    return make_dataset(rows, source="gsm8k", where=where)


def load_gsm8k_solutions(path: PathLike) -> datasets.Dataset:
    """GSM8K ``example_model_solutions.jsonl``: one row per (question, model variant) with the
    model's own solution (``answer``) and ``label`` = its ``is_correct``."""
    p = _file(path, (".jsonl",))
    rows = []
    for i, r in enumerate(read_jsonl(p)):
        q = require(r, "question", str(p), i)
        models = [k for k in r if isinstance(r[k], dict) and "solution" in r[k]]
        if not models:
            raise DataError(f"{p}: row {i}: no model solution fields (expected e.g. '6b_finetuning': {{is_correct, solution}})")
        for m in sorted(models):
            sol = r[m]
            correct = require(sol, "is_correct", str(p), i)
            if not isinstance(correct, bool):
                raise DataError(f"{p}: row {i}: field '{m}.is_correct' = {correct!r} is not a boolean")
            rows.append({"id": stable_id("gsm8k-sol", i, m), "text": q, "answer": require(sol, "solution", str(p), i),
                         "label": int(correct), "entity": q, "model": m, "ground_truth": str(r.get("ground_truth", ""))})
    return make_dataset(rows, source="gsm8k/example_model_solutions", where=str(p), splits=True)


def load_big_bench_mistake(path: PathLike, *, per_step: bool = True) -> datasets.Dataset:
    """BIG-Bench-Mistake JSONL (``input``, ``steps``, ``mistake_index``: first wrong step or null).

    ``per_step=True``: one row per step up to and including the first mistake (steps after it are
    unlabelled), ``text`` = input + steps so far, ``label`` 1 on the wrong step. ``per_step=False``:
    one row per trace, ``label`` 1 if it contains a mistake.
    """
    p = _file(path, (".jsonl",))
    rows = []
    for i, r in enumerate(read_jsonl(p)):
        task_input = require(r, "input", str(p), i)
        steps = require(r, "steps", str(p), i)
        if not isinstance(steps, list) or not steps:
            raise DataError(f"{p}: row {i}: field 'steps' must be a non-empty list")
        mistake = r.get("mistake_index", "__missing__")
        if mistake == "__missing__":
            raise DataError(f"{p}: row {i}: missing field 'mistake_index'")
        if mistake is not None and not (isinstance(mistake, int) and 0 <= mistake < len(steps)):
            raise DataError(f"{p}: row {i}: field 'mistake_index' = {mistake!r} is outside 0..{len(steps) - 1}")
        trace = stable_id(p.stem, i)
        base = {"entity": trace, "trace": trace, "task": p.stem, "mistake_index": -1 if mistake is None else mistake,
                "n_steps": len(steps), "answer": str(r.get("target", ""))}
        if not per_step:
            rows.append({**base, "id": trace, "text": task_input + "\n" + "\n".join(steps), "label": int(mistake is not None),
                         "step_index": -1})
            continue
        last = len(steps) - 1 if mistake is None else mistake
        for s in range(last + 1):
            rows.append({**base, "id": stable_id(trace, s), "text": task_input + "\n" + "\n".join(steps[: s + 1]),
                         "label": int(s == mistake), "step_index": s})
    return make_dataset(rows, source=f"big_bench_mistake/{p.stem}", where=str(p), splits=True)


def load_truthfulqa(path: PathLike) -> datasets.Dataset:
    """TruthfulQA CSV: one row per (question, candidate answer) from ``Correct Answers`` (label 1)
    and ``Incorrect Answers`` (label 0); ``text`` is "Q: ...\\nA: ..."; entity = the question."""
    p = _file(path, (".csv",))
    rows = []
    for i, r in enumerate(read_csv(p, ["Question", "Correct Answers", "Incorrect Answers"])):
        q = require(r, "Question", str(p), i)
        for field, label in (("Correct Answers", 1), ("Incorrect Answers", 0)):
            answers = [a.strip() for a in (r[field] or "").split(";") if a.strip()]
            if not answers:
                raise DataError(f"{p}: row {i}: field {field!r} is empty")
            for j, a in enumerate(answers):
                rows.append({"id": stable_id("tqa", i, label, j), "text": f"Q: {q}\nA: {a}", "label": label, "subject": q,
                             "answer": a, "entity": q, "category": r.get("Category", ""), "type": r.get("Type", "")})
    return make_dataset(rows, source="truthfulqa", where=str(p), splits=True)


#: EntityQuestions question templates per Wikidata relation ("{}" is the subject).
ENTITY_QUESTION_TEMPLATES: dict[str, str] = {
    "P106": "What kind of work does {} do?", "P112": "Who founded {}?", "P127": "Who owns {}?",
    "P131": "Where is {} located?", "P136": "What type of music does {} play?",
    "P159": "Where is the headquarter of {}?", "P17": "Which country is {} located in?",
    "P170": "Who was {} created by?", "P175": "Who performed {}?", "P176": "Which company is {} produced by?",
    "P19": "Where was {} born?", "P20": "Where did {} die?", "P26": "Who is {} married to?",
    "P264": "What music label is {} represented by?", "P276": "Where is {} located?",
    "P36": "What is the capital of {}?", "P40": "Who is {}'s child?", "P407": "Which language was {} written in?",
    "P413": "What position does {} play?", "P495": "Which country was {} created in?",
    "P50": "Who is the author of {}?", "P69": "Where was {} educated?", "P740": "Where was {} founded?",
    "P800": "What is {} famous for?",
}


def _eq_file(f: Path) -> list[dict]:
    relation, _, split = f.name.partition(".")
    split = split.removesuffix(".json")
    template = ENTITY_QUESTION_TEMPLATES.get(relation)
    if template is None:
        raise DataError(f"{f}: unknown relation {relation!r}; expected a file named P<id>.<split>.json")
    pattern = re.compile("^" + re.escape(template).replace(r"\{\}", "(.+)") + "$")
    data = read_json(f)
    if not isinstance(data, list) or not data:
        raise DataError(f"{f}: expected a non-empty JSON list of {{question, answers}}")
    rows = []
    for i, r in enumerate(data):
        q = require(r, "question", str(f), i)
        answers = require(r, "answers", str(f), i)
        if not isinstance(answers, list) or not answers:
            raise DataError(f"{f}: row {i}: field 'answers' must be a non-empty list")
        m = pattern.match(q)
        if m is None:
            raise DataError(f"{f}: row {i}: question {q!r} does not fit the {relation} template {template!r}")
        rows.append({"id": stable_id("eq", relation, split, i), "text": q, "subject": m.group(1), "answer": answers[0],
                     "entity": m.group(1), "split": split, "relation": relation, "aliases": list(answers)})
    return rows


def load_entity_questions(path: PathLike) -> datasets.Dataset:
    """EntityQuestions: a ``P<id>.<split>.json`` file, or a folder of them (searched recursively).
    ``subject`` is recovered from the relation's question template."""
    p = Path(path)
    files = sorted(p.rglob("P*.json")) if p.is_dir() else [_file(p, (".json",))]
    if not files:
        raise DataError(f"{p}: no P<id>.<split>.json files in this folder")
    rows = [row for f in files for row in _eq_file(f)]
    return make_dataset(rows, source="entity_questions", where=str(p))


def load_relations(path: PathLike) -> datasets.Dataset:
    """evandez/relations JSON (``name``, ``prompt_templates``, ``samples``): a file or a folder.
    ``text`` fills the first prompt template with the subject; ``answer`` is the object."""
    p = Path(path)
    files = sorted(p.glob("*.json")) if p.is_dir() else [_file(p, (".json",))]
    if not files:
        raise DataError(f"{p}: no .json relation files in this folder")
    rows = []
    for f in files:
        data = read_json(f)
        if not isinstance(data, dict):
            raise DataError(f"{f}: expected a JSON object with name, prompt_templates, samples")
        name = require(data, "name", str(f), 0)
        templates = require(data, "prompt_templates", str(f), 0)
        samples = require(data, "samples", str(f), 0)
        if not templates or "{}" not in templates[0]:
            raise DataError(f"{f}: field 'prompt_templates' needs templates with '{{}}' for the subject")
        for i, s in enumerate(samples):
            subj, obj = require(s, "subject", str(f), i), require(s, "object", str(f), i)
            rows.append({"id": stable_id("rel", name, i, subj, obj), "text": templates[0].format(subj), "subject": subj,
                         "answer": obj, "entity": subj, "relation": name})
    return make_dataset(rows, source="relations", where=str(p))


def load_rome_known(path: PathLike) -> datasets.Dataset:
    """ROME ``known_1000.json``: ``text`` = the prompt, ``answer`` = the attribute."""
    p = _file(path, (".json",))
    data = read_json(p)
    if not isinstance(data, list) or not data:
        raise DataError(f"{p}: expected a non-empty JSON list of known facts")
    rows = []
    for i, r in enumerate(data):
        rows.append({"id": f"rome-{require(r, 'known_id', str(p), i)}", "text": require(r, "prompt", str(p), i),
                     "subject": require(r, "subject", str(p), i), "answer": require(r, "attribute", str(p), i),
                     "entity": r["subject"], "relation": str(r.get("relation_id", "")), "template": str(r.get("template", ""))})
    return make_dataset(rows, source="rome/known_1000", where=str(p), splits=True)
