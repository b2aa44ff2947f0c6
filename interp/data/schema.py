"""The one row schema every interp dataset shares, and the helpers that enforce it.

Every dataset is a ``datasets.Dataset`` with these columns (extras may follow):

=============  =======  ==============================================================
column         type     meaning
=============  =======  ==============================================================
``id``         str      stable id, unique within the dataset
``text``       str      the prompt, question or statement the model reads
``label``      int      the class (1 true / correct / harmful ...), -1 where none applies
``subject``    str      the marked span inside ``text`` (e.g. the entity), "" if none
``answer``     str      the expected answer or target, "" if none
``entity``     str      grouping key for entity-disjoint splits
``source``     str      generator or file the row came from
``split``      str      ``"train"`` / ``"test"`` (entity-disjoint) or the file's own split
``popularity`` float    a popularity measure (e.g. population), NaN where unknown
=============  =======  ==============================================================
"""

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import datasets

__all__ = [
    "CORE_COLUMNS",
    "DataError",
    "make_dataset",
    "check_schema",
    "entity_split",
    "assign_splits",
    "fingerprint",
    "stable_id",
]

CORE_COLUMNS: tuple[str, ...] = (
    "id", "text", "label", "subject", "answer", "entity", "source", "split", "popularity",
)
_DEFAULTS = {"label": -1, "subject": "", "answer": "", "split": "all", "popularity": math.nan}


class DataError(ValueError):
    """A dataset file or generated row that does not fit the schema; the message names
    the file, the row and the field."""


def stable_id(*parts: object) -> str:
    """A short deterministic id from the parts (same inputs, same id, on every machine)."""
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:12]


def _bucket(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (key, seed): independent of row order."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(rows: list[dict], *, test_fraction: float = 0.2, seed: int = 0, key: str = "entity") -> list[dict]:
    """Set ``split`` to ``"train"``/``"test"`` so that no ``key`` value is in both."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    for row in rows:
        row["split"] = "test" if _bucket(str(row[key]), seed) < test_fraction else "train"
    return rows


def make_dataset(
    rows: Sequence[dict], *, source: str, where: str | None = None, splits: bool = False,
    test_fraction: float = 0.2, seed: int = 0,
) -> datasets.Dataset:
    """Fill defaults, check the schema, optionally assign entity-disjoint splits, build the Dataset.

    Args:
        rows: dicts with at least ``id``, ``text`` and ``entity``.
        source: recorded in the ``source`` column when a row has none.
        where: the file the rows came from, named in errors.
        splits: assign entity-disjoint ``train``/``test`` splits.
    """
    where = where or source
    if not rows:
        raise DataError(f"{where}: no rows; the file is empty or nothing matched (never returning an empty dataset)")
    out = []
    for i, row in enumerate(rows):
        row = {**_DEFAULTS, "source": source, **row}
        for col in ("id", "text", "entity"):
            if col not in row or row[col] is None or (isinstance(row[col], str) and not row[col].strip()):
                raise DataError(f"{where}: row {i}: field {col!r} is missing or empty")
        if not isinstance(row["label"], int) or isinstance(row["label"], bool):
            raise DataError(f"{where}: row {i}: field 'label' must be an int, got {row['label']!r}")
        row["popularity"] = float(row["popularity"])
        out.append(row)
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):
        dup = next(x for x in ids if ids.count(x) > 1)
        raise DataError(f"{where}: duplicate id {dup!r}")
    if splits:
        assign_splits(out, test_fraction=test_fraction, seed=seed)
    columns = list(CORE_COLUMNS) + [c for c in out[0] if c not in CORE_COLUMNS]
    return datasets.Dataset.from_list([{c: r.get(c) for c in columns} for r in out])


def check_schema(ds: datasets.Dataset, labels: Iterable[int] | None = None, where: str = "dataset") -> None:
    """Raise :class:`DataError` unless ``ds`` has the core columns (and labels in ``labels``)."""
    missing = [c for c in CORE_COLUMNS if c not in ds.column_names]
    if missing:
        raise DataError(f"{where}: missing columns {missing}; every interp dataset has {list(CORE_COLUMNS)}")
    if labels is not None:
        allowed = set(labels)
        for i, label in enumerate(ds["label"]):
            if label not in allowed:
                raise DataError(f"{where}: row {i}: label {label!r} is outside {sorted(allowed)}")


def entity_split(ds: datasets.Dataset, split: str) -> datasets.Dataset:
    """The rows of one split (``"train"`` or ``"test"``)."""
    present = sorted(set(ds["split"]))
    if split not in present:
        raise ValueError(f"split {split!r} not in this dataset; it has {present}")
    return ds.filter(lambda s: s == split, input_columns="split")


def fingerprint(ds: datasets.Dataset) -> str:
    """A content hash of the rows (order included): same data, same fingerprint."""
    digest = hashlib.sha256()
    for row in ds:
        digest.update(json.dumps(row, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def read_json(path: Path) -> object:
    """Parse a JSON file with errors that name it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def read_jsonl(path: Path) -> list[dict]:
    """Parse a JSON-lines file with errors that name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    rows = []
    for i, line in enumerate(lines):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {i + 1}: not valid JSON ({err})") from None
    if not rows:
        raise DataError(f"{path}: the file is empty")
    return rows


def read_csv(path: Path, required: Sequence[str]) -> list[dict]:
    """Read a CSV into dicts, checking that ``required`` columns exist."""
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if not header:
        raise DataError(f"{path}: the file is empty")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {header}")
    if not rows:
        raise DataError(f"{path}: header only, no rows")
    return rows


def require(row: dict, field: str, where: str, i: int) -> object:
    """``row[field]``, or a DataError naming the file, row and field."""
    if field not in row or row[field] is None:
        raise DataError(f"{where}: row {i}: missing field {field!r}")
    return row[field]


def parse_label(value: object, allowed: Sequence[int], where: str, i: int, field: str = "label") -> int:
    """An int label from a file cell, checked against ``allowed``."""
    try:
        label = int(str(value).strip())
    except ValueError:
        raise DataError(f"{where}: row {i}: field {field!r} = {value!r} is not an integer label") from None
    if label not in allowed:
        raise DataError(f"{where}: row {i}: field {field!r} = {label} is outside the expected set {list(allowed)}")
    return label
