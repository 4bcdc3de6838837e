"""Bring your own data: a small YAML file that says which column plays which role.

A spec names the three tables (CSV or Parquet), the column that holds each role (customer id, article id,
timestamp, optional price and quantity) and the type of every feature column. :func:`read_dataset` turns the
files into a :class:`~recsys.data.dataset.Dataset` with canonical column names and types, so that everything
downstream is written once against roles, never against one data set's column names::

    name: movielens-small
    id_types: {customer_id: int, article_id: int}      # int | string; every table is cast to these
    transactions:
      path: ratings.csv                                  # relative to the spec's folder (or base_dir)
      customer_id: userId
      article_id: movieId
      timestamp: {column: timestamp, unit: s}            # or {column: day, format: "%Y-%m-%d"}, or just: day
      features: {rating: numeric}
    articles:
      path: movies.csv
      article_id: movieId
      features:
        title: text
        genres: {type: multi_categorical, separator: "|"}
    customers: null                                      # derived from the transactions when absent

Features are ``name: type`` or ``name: {type, separator, optional, unit, format}``; ``optional: true`` lets
the column be missing from the file (it is then filled with nulls). CSV files are read as text and cast here,
so a number written with or without leading zeros (``0108775015``) is the same id in every file, and a bad
value is reported with its column, file and row instead of silently becoming null.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator, model_validator

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT, Dataset, FeatureSpec
from recsys.errors import DataError, SpecError

SPECS_DIR = Path(__file__).parent / "specs"  # the specs shipped with the package (hm.yaml, synthetic.yaml)
TABLES = ("transactions", "articles", "customers")
ID_DTYPES: dict[str, pl.DataType] = {"int": pl.Int64(), "string": pl.String()}
TIMESTAMP_DTYPE = pl.Datetime("us")
_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")

IdType = Literal["int", "string"]
FeatureType = Literal["categorical", "multi_categorical", "numeric", "text", "timestamp"]
EpochUnit = Literal["s", "ms", "us", "ns"]


class _Model(BaseModel):
    # Unknown keys are errors: a typo in a spec must fail loudly, not fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdTypes(_Model):
    """The type every table's id columns are cast to, so that joins across files always match."""

    customer_id: IdType
    article_id: IdType


class TimestampDef(_Model):
    """How to read a timestamp: epoch numbers (``unit``), a strftime ``format``, or ISO text (neither)."""

    column: str
    unit: EpochUnit | None = None
    format: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> TimestampDef:
        if self.unit and self.format:
            raise ValueError("give either 'unit' (epoch numbers) or 'format' (strftime), not both")
        return self


class FeatureDef(_Model):
    """The type of one feature column; the column keeps its name in the loaded frame."""

    type: FeatureType
    separator: str | None = None  # multi_categorical: the separator between values
    optional: bool = False  # a missing column is filled with nulls instead of failing
    unit: EpochUnit | None = None  # timestamp only
    format: str | None = None  # timestamp only

    @model_validator(mode="after")
    def _consistent(self) -> FeatureDef:
        if self.type == "multi_categorical" and not self.separator:
            raise ValueError("a multi_categorical feature needs a 'separator'")
        if self.type != "multi_categorical" and self.separator is not None:
            raise ValueError(f"'separator' only applies to multi_categorical features, not {self.type}")
        if self.type != "timestamp" and (self.unit or self.format):
            raise ValueError(f"'unit' and 'format' only apply to timestamp features, not {self.type}")
        if self.unit and self.format:
            raise ValueError("give either 'unit' (epoch numbers) or 'format' (strftime), not both")
        return self

    def as_timestamp(self, column: str) -> TimestampDef:
        return TimestampDef(column=column, unit=self.unit, format=self.format)


class _Table(_Model):
    _roles: ClassVar[tuple[str, ...]] = ()  # canonical role names: a feature may not take one
    path: str
    delimiter: str = ","  # CSV only
    features: dict[str, FeatureDef] = {}

    @field_validator("features", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `title: text` is short for `title: {type: text}`.
        if isinstance(value, dict):
            return {name: {"type": v} if isinstance(v, str) else v for name, v in value.items()}
        return value

    @field_validator("features")
    @classmethod
    def _not_a_role(cls, value: dict[str, FeatureDef]) -> dict[str, FeatureDef]:
        clash = sorted(set(value) & set(cls._roles))
        if clash:
            raise ValueError(f"feature name {clash[0]!r} is the canonical name of a role column; rename the feature")
        return value

    @field_validator("path")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if not value.lower().endswith(_CSV_SUFFIXES + _PARQUET_SUFFIXES):
            raise ValueError(f"expected a .csv or .parquet file, got {value!r}")
        return value


class TransactionsTable(_Table):
    _roles: ClassVar[tuple[str, ...]] = (T_DAT, CUSTOMER_ID, ARTICLE_ID, PRICE, QUANTITY)

    customer_id: str
    article_id: str
    timestamp: TimestampDef
    price: str | None = None  # absent: a null Float64 price column
    quantity: str | None = None  # absent: quantity 1

    @field_validator("timestamp", mode="before")
    @classmethod
    def _column_only(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value


class ArticlesTable(_Table):
    _roles: ClassVar[tuple[str, ...]] = (ARTICLE_ID,)

    article_id: str


class CustomersTable(_Table):
    _roles: ClassVar[tuple[str, ...]] = (CUSTOMER_ID,)

    customer_id: str


class DatasetSpec(_Model):
    """A parsed spec plus where it came from (for messages) and the folder its relative paths start from."""

    name: str
    id_types: IdTypes
    transactions: TransactionsTable
    articles: ArticlesTable
    customers: CustomersTable | None = None  # absent: the distinct customers of the transactions, no features

    _source: str = PrivateAttr(default="<dict>")
    _base_dir: Path = PrivateAttr(default=Path("."))

    @property
    def source(self) -> str:
        """The spec file (or ``<dict>``), named in every error message."""
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def table(self, name: str) -> _Table | None:
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}; expected one of {', '.join(TABLES)}")
        return getattr(self, name)

    def table_path(self, name: str) -> Path:
        """The resolved file of a table: absolute paths as they are, relative ones under ``base_dir``."""
        table = self.table(name)
        if table is None:
            raise SpecError(f"spec {self.source}: table '{name}' is not declared")
        path = Path(table.path).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def feature_specs(self) -> dict[str, dict[str, FeatureSpec]]:
        """Feature types per table, in the form :class:`Dataset` carries them."""
        out: dict[str, dict[str, FeatureSpec]] = {}
        for name in TABLES:
            table = self.table(name)
            features = table.features if table is not None else {}
            out[name] = {col: FeatureSpec(f.type, f.separator) for col, f in features.items()}
        return out


# --------------------------------------------------------------------------------------------------- loading


def parse_spec(data: Any, base_dir: str | Path, source: str = "<dict>") -> DatasetSpec:
    """Validate a spec given as a dict (e.g. built by the synthetic generator); errors name ``source``."""
    if not isinstance(data, dict):
        raise SpecError(f"spec {source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_one_line(exc, source)) from None
    spec._source = source
    spec._base_dir = Path(base_dir).expanduser()
    return spec


def load_spec(path: str | Path, base_dir: str | Path | None = None) -> DatasetSpec:
    """Read a spec file. Relative table paths start from ``base_dir``, or from the spec's own folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SpecError(f"spec {path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"spec {path}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"spec {path}: cannot read the file ({exc})") from None
    root = Path(base_dir).expanduser() if base_dir is not None else path.resolve().parent
    return parse_spec(data, root, source=str(path))


def spec_to_dict(spec: DatasetSpec) -> dict[str, Any]:
    """The spec as plain YAML-ready values, defaults left out (the inverse of :func:`parse_spec`)."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    for name in TABLES:
        table = data.get(name)
        if not table:
            continue
        # path first, features last, and `name: type` where a feature has nothing but a type: as a person writes it
        features = {k: v["type"] if list(v) == ["type"] else v for k, v in table.pop("features", {}).items()}
        data[name] = {"path": table.pop("path"), **table, **({"features": features} if features else {})}
    return data


def write_spec(spec: DatasetSpec | dict[str, Any], path: str | Path) -> Path:
    """Write a spec as YAML (e.g. next to generated Parquet files, with paths relative to that folder)."""
    data = spec_to_dict(spec) if isinstance(spec, DatasetSpec) else spec
    if not isinstance(spec, DatasetSpec):
        parse_spec(data, Path(path).parent, source=str(path))  # never write a spec that cannot be read back
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _one_line(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        elif err["type"] == "missing":
            problems.append(f"missing required key '{key}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            value = err.get("input")
            got = f" (got {value!r})" if isinstance(value, str | int | float | bool) or value is None else ""
            problems.append(f"key '{key or '(top level)'}': {msg}{got}")
    return f"spec {source}: " + "; ".join(problems).replace("\n", " ")


# --------------------------------------------------------------------------------------------------- reading


@dataclass
class _Column:
    """One output column: where it comes from, what it becomes, and how a failed cast is detected."""

    out: str  # name in the loaded frame
    src: str | None  # column in the file; None for an optional role the spec leaves out
    key: str  # spec key, for messages
    dtype: pl.DataType  # the canonical type
    expected: str  # what a person should read in an error message
    optional: bool = False  # a missing column is filled instead of failing
    required: bool = False  # nulls are errors (ids, the transaction timestamp)
    timestamp: TimestampDef | None = None
    separator: str | None = None
    default: Any = None  # fill value when absent


def read_table(spec: DatasetSpec, name: str) -> pl.DataFrame:
    """Read one table: role columns get canonical names, ids and features their declared types."""
    table = spec.table(name)
    if table is None:
        raise SpecError(f"spec {spec.source}: table '{name}' is not declared")
    path = spec.table_path(name)
    lf = _scan(path, table, name, spec)
    try:
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read the file ({_first_line(exc)})") from None

    columns = _plan(spec, name, table)
    exprs: list[pl.Expr] = []
    checks: list[tuple[_Column, pl.Expr, pl.Expr | None]] = []  # column, failed-cast mask, null mask
    for col in columns:
        if col.src is None or (col.optional and col.src not in schema):
            exprs.append(pl.lit(col.default, dtype=col.dtype).alias(col.out))
            continue
        if col.src not in schema:
            present = ", ".join(list(schema)[:12]) + (", ..." if len(schema) > 12 else "")
            raise DataError(
                f"{path}: column '{col.src}' is missing (expected by spec key {col.key} in {spec.source}; "
                f"columns present: {present})"
            )
        try:
            cast, bad = _cast(col, schema[col.src])
        except DataError as exc:
            raise DataError(f"{path}: {exc} (spec key {col.key} in {spec.source})") from None
        exprs.append(cast.alias(col.out))
        checks.append((col, bad, cast.is_null() if col.required else None))

    flags = [mask.alias(f"__bad{i}") for i, (_, mask, _) in enumerate(checks) if mask is not None]
    flags += [mask.alias(f"__null{i}") for i, (_, _, mask) in enumerate(checks) if mask is not None]
    try:
        df = lf.select(*exprs, *flags).collect()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"{path}: cannot read the file ({_first_line(exc)})") from None
    if not flags:
        return _unique_ids(df, name, path, spec)

    counts = df.select(pl.col(f.meta.output_name()).sum() for f in flags).row(0, named=True)
    for i, (col, bad, _) in enumerate(checks):
        if counts.get(f"__bad{i}"):
            row, value = _first_offender(lf, col.src, bad)
            n_bad = counts[f"__bad{i}"]
            raise DataError(
                f"{path}: column '{col.src}' cannot be read as {col.expected}: {n_bad} value(s) fail, "
                f"e.g. {value!r} in data row {row} (spec key {col.key} in {spec.source})"
            )
        if counts.get(f"__null{i}"):
            raise DataError(
                f"{path}: column '{col.src}' has {counts[f'__null{i}']} empty value(s), but every row needs "
                f"a value ({col.expected}; spec key {col.key} in {spec.source})"
            )
    return _unique_ids(df.drop(f.meta.output_name() for f in flags), name, path, spec)


def _unique_ids(df: pl.DataFrame, name: str, path: Path, spec: DatasetSpec) -> pl.DataFrame:
    """Articles and customers are keyed by their id: a repeated id would silently duplicate joined rows."""
    key = {"articles": ARTICLE_ID, "customers": CUSTOMER_ID}.get(name)
    if key is None:
        return df
    repeated = df.filter(pl.col(key).is_duplicated()).get_column(key)
    if repeated.len():
        raise DataError(
            f"{path}: column '{getattr(spec.table(name), key)}' has {repeated.n_unique()} repeated id(s), "
            f"e.g. {repeated[0]!r}; each {name[:-1]} must appear once (spec key {name}.{key} in {spec.source})"
        )
    return df


def read_dataset(spec: DatasetSpec) -> Dataset:
    """Load the three tables of a spec into a :class:`Dataset` (customers derived when not declared)."""
    transactions = read_table(spec, "transactions")
    articles = read_table(spec, "articles")
    if spec.customers is not None:
        customers = read_table(spec, "customers")
    else:
        customers = transactions.select(pl.col(CUSTOMER_ID).unique().sort())
    return Dataset(
        name=spec.name,
        customers=customers,
        articles=articles,
        transactions=transactions,
        features=spec.feature_specs(),
    )


def _scan(path: Path, table: _Table, name: str, spec: DatasetSpec) -> pl.LazyFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found (spec key {name}.path in {spec.source})")
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return pl.scan_parquet(path)
    # Every CSV column is read as text and cast by the spec: no type guessing that differs between files.
    return pl.scan_csv(path, infer_schema=False, separator=table.delimiter)


_FEATURE_DTYPES: dict[str, pl.DataType] = {
    "categorical": pl.String(),
    "text": pl.String(),
    "numeric": pl.Float64(),
    "multi_categorical": pl.List(pl.String()),
    "timestamp": TIMESTAMP_DTYPE,
}


def _plan(spec: DatasetSpec, name: str, table: _Table) -> list[_Column]:
    """The output columns of a table, roles first, in a fixed order."""
    cid, aid = spec.id_types.customer_id, spec.id_types.article_id
    cols: list[_Column] = []
    if isinstance(table, TransactionsTable):
        ts = table.timestamp
        cols += [
            _Column(
                T_DAT,
                ts.column,
                "transactions.timestamp",
                TIMESTAMP_DTYPE,
                "timestamp",
                required=True,
                timestamp=ts,
            ),
            _Column(
                CUSTOMER_ID,
                table.customer_id,
                "transactions.customer_id",
                ID_DTYPES[cid],
                f"{cid} id",
                required=True,
            ),
            _Column(
                ARTICLE_ID,
                table.article_id,
                "transactions.article_id",
                ID_DTYPES[aid],
                f"{aid} id",
                required=True,
            ),
            _Column(PRICE, table.price, "transactions.price", pl.Float64(), "number"),
            _Column(QUANTITY, table.quantity, "transactions.quantity", pl.Int32(), "integer", default=1),
        ]
    elif isinstance(table, ArticlesTable):
        cols.append(
            _Column(
                ARTICLE_ID,
                table.article_id,
                "articles.article_id",
                ID_DTYPES[aid],
                f"{aid} id",
                required=True,
            )
        )
    else:
        assert isinstance(table, CustomersTable)
        cols.append(
            _Column(
                CUSTOMER_ID,
                table.customer_id,
                "customers.customer_id",
                ID_DTYPES[cid],
                f"{cid} id",
                required=True,
            )
        )
    for feat, f in table.features.items():
        cols.append(
            _Column(
                feat,
                feat,
                f"{name}.features.{feat}",
                _FEATURE_DTYPES[f.type],
                {"numeric": "number"}.get(f.type, f.type),
                optional=f.optional,
                timestamp=f.as_timestamp(feat) if f.type == "timestamp" else None,
                separator=f.separator,
            )
        )
    return cols


def _cast(col: _Column, src_dtype: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """The typed value of a column and a mask of present values that did not survive the cast (or None)."""
    raw = pl.col(col.src)
    is_text = src_dtype == pl.String()
    if col.timestamp is not None:
        cast, col.expected = _timestamp(raw, src_dtype, col.timestamp)
    elif col.separator is not None:
        if is_text:
            items = raw.str.split(col.separator)
        elif isinstance(src_dtype, pl.List):
            items = raw.cast(pl.List(pl.String()))
        else:
            items = raw.cast(pl.String()).str.split(col.separator)
        strip = pl.element().str.strip_chars()
        return items.list.eval(strip.filter(strip != "")), None
    elif col.dtype == pl.String():
        return (raw if is_text else raw.cast(pl.String())), None
    else:  # Int64 ids, Float64, Int32 quantity
        cast = (raw.str.strip_chars() if is_text else raw).cast(col.dtype, strict=False)
        col.expected = f"{col.expected} ({col.dtype})"
    bad = raw.is_not_null() & cast.is_null()
    if is_text:  # an empty field is a missing value, not a bad one
        bad = bad & (raw.str.strip_chars() != "")
    return cast, bad


# ISO text that ends in a zone (``Z``, ``+02``, ``+0200``, ``+02:00``) after a time of day; a date alone
# (``2020-01-05``) must not match, its ``-05`` is the day.
_ISO_ZONE = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_UTC = pl.Datetime("us", "UTC")


def _timestamp(raw: pl.Expr, src_dtype: pl.DataType, ts: TimestampDef) -> tuple[pl.Expr, str]:
    """Every path ends in naive UTC (the store's times): a zone in the data is applied, then dropped."""
    if isinstance(src_dtype, pl.Datetime):
        expr = raw.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if src_dtype.time_zone else raw
        return expr.cast(TIMESTAMP_DTYPE), "timestamp"
    if src_dtype == pl.Date():
        return raw.cast(TIMESTAMP_DTYPE), "timestamp"
    is_text = src_dtype == pl.String()
    if ts.unit is not None:
        if is_text:
            number = raw.str.strip_chars().cast(pl.Int64, strict=False)
        else:
            number = raw if src_dtype.is_integer() else raw.cast(pl.Int64, strict=False)
        return pl.from_epoch(number, time_unit=ts.unit).cast(TIMESTAMP_DTYPE), f"epoch timestamp in {ts.unit}"
    if not is_text:
        raise DataError(f"column '{ts.column}' holds {src_dtype} values: give the timestamp a 'unit' (s, ms, us, ns)")
    text = raw.str.strip_chars()
    if ts.format is not None:
        # Parsed as UTC: a %z offset is applied, a format without one reads the text as UTC already.
        parsed = text.str.strptime(_UTC, ts.format, strict=False)
        return parsed.dt.replace_time_zone(None), f"timestamp with format {ts.format!r}"
    # Without a format polars infers one per expression, and a lazy frame cannot mix zoned and naive text in one
    # inference: values with a zone and values without are parsed apart, each with its own inferred layout.
    zoned = text.str.contains(_ISO_ZONE)
    aware = pl.when(zoned).then(text).str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    naive = pl.when(~zoned).then(text).str.to_datetime(time_unit="us", strict=False)
    expected = "ISO date or timestamp (e.g. 2020-01-05, 2020-01-05T12:30:00, 2020-01-05T12:30:00+02:00)"
    return pl.coalesce(aware.dt.replace_time_zone(None), naive), expected


def _first_offender(lf: pl.LazyFrame, src: str, bad: pl.Expr) -> tuple[int, Any]:
    """The first data row (1-based, header not counted) whose value failed the cast: only on the error path."""
    hit = lf.with_row_index("__row", offset=1).filter(bad).select("__row", src).head(1).collect()
    return (int(hit["__row"][0]), hit[src][0]) if hit.height else (-1, None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = [
    "SPECS_DIR",
    "TABLES",
    "ArticlesTable",
    "CustomersTable",
    "DatasetSpec",
    "FeatureDef",
    "IdTypes",
    "TimestampDef",
    "TransactionsTable",
    "load_spec",
    "parse_spec",
    "read_dataset",
    "read_table",
    "spec_to_dict",
    "write_spec",
]
