"""Dataset specs: a good spec loads with canonical names and types; every bad one fails in one line that names
the file and the key or column to fix."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from recsys.data.dataset import ARTICLE_ID, CUSTOMER_ID, PRICE, QUANTITY, T_DAT
from recsys.data.spec import SPECS_DIR, load_spec, parse_spec, read_dataset, write_spec
from recsys.errors import DataError, SpecError

TX_CSV = "user,item,when,stars,n,cost\n1,10,2020-01-02,4.5,2,9.99\n2,11,2020-01-03,3,1,\n1,11,2020-01-05,5,1,1.5\n"
ITEMS_CSV = "item,name,tags,colour\n10,Shirt,a|b,red\n11,Sock,b,\n"
USERS_CSV = "user,age,club\n1,30,ACTIVE\n2,,PRE-CREATE\n"

GOOD = {
    "name": "tiny",
    "id_types": {"customer_id": "string", "article_id": "int"},
    "transactions": {
        "path": "tx.csv",
        "customer_id": "user",
        "article_id": "item",
        "timestamp": {"column": "when", "format": "%Y-%m-%d"},
        "price": "cost",
        "quantity": "n",
        "features": {"stars": "numeric"},
    },
    "articles": {
        "path": "items.csv",
        "article_id": "item",
        "features": {
            "name": "text",
            "tags": {"type": "multi_categorical", "separator": "|"},
            "colour": "categorical",
        },
    },
    "customers": {"path": "users.csv", "customer_id": "user", "features": {"age": "numeric", "club": "categorical"}},
}


def _files(folder: Path, tx: str = TX_CSV, items: str = ITEMS_CSV, users: str = USERS_CSV) -> Path:
    (folder / "tx.csv").write_text(tx)
    (folder / "items.csv").write_text(items)
    (folder / "users.csv").write_text(users)
    return folder


def _spec_file(folder: Path, data: dict | str, name: str = "my.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _with(path: tuple[str, ...], value: object) -> dict:
    """GOOD with one key replaced (or deleted when value is ...)."""
    data = copy.deepcopy(GOOD)
    node = data
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------ good specs


def test_good_spec_loads_with_canonical_names_and_types(tmp_path: Path) -> None:
    ds = read_dataset(load_spec(_spec_file(_files(tmp_path), GOOD)))
    tx = ds.transactions
    assert tx.columns == [T_DAT, CUSTOMER_ID, ARTICLE_ID, PRICE, QUANTITY, "stars"]
    assert [tx.schema[c] for c in tx.columns] == [
        pl.Datetime("us"),
        pl.String,
        pl.Int64,
        pl.Float64,
        pl.Int32,
        pl.Float64,
    ]
    assert tx[T_DAT].to_list() == [datetime(2020, 1, 2), datetime(2020, 1, 3), datetime(2020, 1, 5)]
    assert tx[CUSTOMER_ID].to_list() == ["1", "2", "1"]  # declared string: ints in the file become text
    assert tx[PRICE].to_list() == [9.99, None, 1.5]  # an empty price is missing, not an error
    assert tx[QUANTITY].to_list() == [2, 1, 1]
    assert ds.articles["tags"].to_list() == [["a", "b"], ["b"]]
    assert ds.articles["colour"].to_list() == ["red", None]
    assert ds.customers["age"].to_list() == [30.0, None]
    assert ds.features["articles"]["tags"].separator == "|"
    assert ds.feature_columns("customers", "categorical") == ["club"]


def test_relative_paths_start_at_the_spec_folder_unless_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    data_dir = _files(tmp_path / "data")
    spec_in_data = _spec_file(data_dir, GOOD)
    assert read_dataset(load_spec(spec_in_data)).transactions.height == 3
    (tmp_path / "specs").mkdir()
    elsewhere = _spec_file(tmp_path / "specs", GOOD)
    with pytest.raises(DataError, match=r"tx\.csv: file not found"):
        read_dataset(load_spec(elsewhere))
    assert read_dataset(load_spec(elsewhere, base_dir=data_dir)).transactions.height == 3


def test_optional_roles_and_no_customers_table(tmp_path: Path) -> None:
    data = _with(("transactions", "price"), ...)
    del data["transactions"]["quantity"]
    del data["customers"]
    ds = read_dataset(parse_spec(data, _files(tmp_path)))
    assert ds.transactions.schema[PRICE] == pl.Float64 and ds.transactions[PRICE].null_count() == 3
    assert ds.transactions[QUANTITY].to_list() == [1, 1, 1] and ds.transactions.schema[QUANTITY] == pl.Int32
    assert ds.customers.to_dict(as_series=False) == {CUSTOMER_ID: ["1", "2"]}  # distinct buyers, no features
    assert ds.features["customers"] == {}


def test_optional_feature_column_may_be_missing(tmp_path: Path) -> None:
    data = _with(("transactions", "features", "channel"), {"type": "categorical", "optional": True})
    ds = read_dataset(parse_spec(data, _files(tmp_path)))
    assert ds.transactions.schema["channel"] == pl.String
    assert ds.transactions["channel"].null_count() == 3


def test_epoch_units_iso_timestamps_and_leading_zeros(tmp_path: Path) -> None:
    tx = "user,item,ms,iso\n1,0010,1600000000000,2020-09-13T12:26:40\n2,011,1600000000500,2020-09-13 12:26:41\n"
    data = _with(("transactions", "timestamp"), {"column": "ms", "unit": "ms"})
    data["transactions"] |= {"price": None, "quantity": None, "features": {"iso": "timestamp"}}
    ds = read_dataset(parse_spec(data, _files(tmp_path, tx=tx)))
    assert ds.transactions[T_DAT].to_list() == [
        datetime(2020, 9, 13, 12, 26, 40),
        datetime(2020, 9, 13, 12, 26, 40, 500_000),
    ]
    assert ds.transactions["iso"].to_list() == [datetime(2020, 9, 13, 12, 26, 40), datetime(2020, 9, 13, 12, 26, 41)]
    assert ds.transactions[ARTICLE_ID].to_list() == [10, 11]  # 0010 and 10 are one article


def test_iso_timestamps_with_a_zone_become_naive_utc(tmp_path: Path) -> None:
    # Z, +hh:mm and +hhmm offsets, and zone-less text in one column: all read as naive UTC.
    tx = (
        "user,item,when\n1,10,2020-01-02T12:00:00Z\n2,11,2020-01-03T12:00:00+02:00\n"
        "1,11,2020-01-04T23:30:00-0130\n2,10,2020-01-05 08:00:00\n"
    )
    data = _with(("transactions", "timestamp"), "when")
    data["transactions"] |= {"price": None, "quantity": None, "features": {}}
    ts = read_dataset(parse_spec(data, _files(tmp_path, tx=tx))).transactions[T_DAT]
    assert ts.dtype == pl.Datetime("us")
    assert ts.to_list() == [
        datetime(2020, 1, 2, 12),
        datetime(2020, 1, 3, 10),
        datetime(2020, 1, 5, 1),
        datetime(2020, 1, 5, 8),
    ]


def test_timestamp_format_with_an_offset_becomes_naive_utc(tmp_path: Path) -> None:
    tx = "user,item,when\n1,10,2020-01-02T12:00:00+02:00\n2,11,2020-01-03T00:30:00-01:00\n"
    data = _with(("transactions", "timestamp"), {"column": "when", "format": "%Y-%m-%dT%H:%M:%S%z"})
    data["transactions"] |= {"price": None, "quantity": None, "features": {}}
    ts = read_dataset(parse_spec(data, _files(tmp_path, tx=tx))).transactions[T_DAT]
    assert ts.dtype == pl.Datetime("us")  # a zone left on would not compare with the store's naive times
    assert ts.to_list() == [datetime(2020, 1, 2, 10), datetime(2020, 1, 3, 1, 30)]


def test_parquet_tables_with_native_types(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "user": [1, 2],
            "item": [10, 11],
            "day": [datetime(2020, 1, 1).date(), datetime(2020, 1, 2).date()],
            "cost": [1, 2],
        }
    ).write_parquet(tmp_path / "tx.parquet")
    pl.DataFrame({"item": [10, 11], "tags": [["a", "b"], ["c"]], "code": [7, 8]}).write_parquet(
        tmp_path / "items.parquet"
    )
    data = {
        "name": "pq",
        "id_types": {"customer_id": "string", "article_id": "int"},
        "transactions": {
            "path": "tx.parquet",
            "customer_id": "user",
            "article_id": "item",
            "timestamp": "day",
            "price": "cost",
        },
        "articles": {
            "path": "items.parquet",
            "article_id": "item",
            "features": {"tags": {"type": "multi_categorical", "separator": ","}, "code": "categorical"},
        },
    }
    ds = read_dataset(parse_spec(data, tmp_path))
    assert ds.transactions[T_DAT].to_list() == [datetime(2020, 1, 1), datetime(2020, 1, 2)]
    assert ds.transactions.schema[T_DAT] == pl.Datetime("us")
    assert ds.transactions[CUSTOMER_ID].to_list() == ["1", "2"]
    assert ds.transactions[PRICE].to_list() == [1.0, 2.0]
    assert ds.articles["tags"].to_list() == [["a", "b"], ["c"]]
    assert ds.articles["code"].to_list() == ["7", "8"]


def test_written_spec_reads_back(tmp_path: Path) -> None:
    path = write_spec(GOOD, tmp_path / "out" / "dataset.yaml")
    spec = load_spec(path)
    assert spec.name == "tiny" and spec.base_dir == path.parent.resolve()
    assert spec.articles.features["tags"].separator == "|"
    assert spec.transactions.timestamp.format == "%Y-%m-%d"


@pytest.mark.parametrize("name", ["hm.yaml", "synthetic.yaml"])
def test_shipped_specs_are_valid(name: str) -> None:
    spec = load_spec(SPECS_DIR / name)
    assert spec.id_types.article_id == "int"
    assert spec.articles.features["product_code"].type == "categorical"
    assert spec.customers is not None and "age" in spec.customers.features


# ------------------------------------------------------------------------------------------------- bad specs


def test_unknown_key(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, _with(("transactions", "colour"), "red"), name="ml.yaml")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert _one_line(exc) == f"spec {path}: unknown key 'transactions.colour'"


def test_unknown_top_level_key_and_feature_option(tmp_path: Path) -> None:
    data = _with(("article",), {})
    data["articles"]["features"]["tags"]["sep"] = "|"
    with pytest.raises(SpecError) as exc:
        load_spec(_spec_file(tmp_path, data))
    message = _one_line(exc)
    assert "unknown key 'article'" in message and "unknown key 'articles.features.tags.sep'" in message


def test_missing_required_key(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, _with(("transactions", "article_id"), ...))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert _one_line(exc) == f"spec {path}: missing required key 'transactions.article_id'"


def test_unknown_feature_type(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, _with(("articles", "features", "colour"), "colour"))
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    message = _one_line(exc)
    assert message.startswith(f"spec {path}: key 'articles.features.colour.type'")
    assert "'categorical'" in message and "got 'colour'" in message


def test_bad_values_in_spec(tmp_path: Path) -> None:
    cases = {
        ("articles", "features", "tags"): ("multi_categorical", "needs a 'separator'"),
        ("id_types", "article_id"): ("integer", "key 'id_types.article_id'"),
        ("transactions", "features", "price"): (
            "numeric",
            "'transactions.features': feature name 'price' is the canonical name",
        ),
        ("articles", "path"): ("items.json", "expected a .csv or .parquet file"),
        ("transactions", "timestamp"): ({"column": "when", "unit": "s", "format": "%Y"}, "not both"),
    }
    for key, (value, expected) in cases.items():
        path = _spec_file(tmp_path, _with(key, value))
        with pytest.raises(SpecError) as exc:
            load_spec(path)
        message = _one_line(exc)
        assert str(path) in message and expected in message, message


def test_invalid_yaml_and_missing_spec(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, "name: x\ntransactions: {path: a.csv\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert _one_line(exc).startswith(f"spec {path}: invalid YAML at line")
    with pytest.raises(SpecError, match=r"nope\.yaml: file not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="top level"):
        load_spec(_spec_file(tmp_path, "- a list\n"))


def test_missing_file(tmp_path: Path) -> None:
    spec_path = _spec_file(_files(tmp_path), _with(("articles", "path"), "movies.csv"))
    with pytest.raises(DataError) as exc:
        read_dataset(load_spec(spec_path))
    assert _one_line(exc) == f"{tmp_path / 'movies.csv'}: file not found (spec key articles.path in {spec_path})"


def test_missing_column(tmp_path: Path) -> None:
    spec_path = _spec_file(_files(tmp_path), _with(("articles", "article_id"), "article_id"))
    with pytest.raises(DataError) as exc:
        read_dataset(load_spec(spec_path))
    message = _one_line(exc)
    assert message.startswith(
        f"{tmp_path / 'items.csv'}: column 'article_id' is missing (expected by spec key articles.article_id "
        f"in {spec_path};"
    )
    assert "columns present: item, name, tags, colour" in message


def test_missing_feature_column(tmp_path: Path) -> None:
    spec_path = _spec_file(_files(tmp_path), _with(("customers", "features", "height"), "numeric"))
    with pytest.raises(DataError, match=r"users\.csv: column 'height' is missing .*customers\.features\.height"):
        read_dataset(load_spec(spec_path))


def test_numeric_column_with_text(tmp_path: Path) -> None:
    tx = TX_CSV.replace("2020-01-03,3,", "2020-01-03,lots,")
    spec_path = _spec_file(_files(tmp_path, tx=tx), GOOD)
    with pytest.raises(DataError) as exc:
        read_dataset(load_spec(spec_path))
    assert _one_line(exc) == (
        f"{tmp_path / 'tx.csv'}: column 'stars' cannot be read as number (Float64): 1 value(s) fail, "
        f"e.g. 'lots' in data row 2 (spec key transactions.features.stars in {spec_path})"
    )


def test_id_that_is_not_an_int(tmp_path: Path) -> None:
    items = ITEMS_CSV.replace("11,Sock", "A11,Sock")
    spec_path = _spec_file(_files(tmp_path, items=items), GOOD)
    with pytest.raises(DataError) as exc:
        read_dataset(load_spec(spec_path))
    message = _one_line(exc)
    assert "items.csv: column 'item' cannot be read as int id (Int64)" in message and "'A11'" in message


def test_unparsable_date(tmp_path: Path) -> None:
    tx = TX_CSV.replace("2020-01-05", "05/01/2020")
    spec_path = _spec_file(_files(tmp_path, tx=tx), GOOD)
    with pytest.raises(DataError) as exc:
        read_dataset(load_spec(spec_path))
    assert _one_line(exc) == (
        f"{tmp_path / 'tx.csv'}: column 'when' cannot be read as timestamp with format '%Y-%m-%d': 1 value(s) "
        f"fail, e.g. '05/01/2020' in data row 3 (spec key transactions.timestamp in {spec_path})"
    )


def test_unparsable_iso_timestamp_with_a_zone(tmp_path: Path) -> None:
    tx = "user,item,when\n1,10,2020-01-02T12:00:00Z\n2,11,2020-01-32T12:00:00+02:00\n"
    data = _with(("transactions", "timestamp"), "when")
    data["transactions"] |= {"price": None, "quantity": None, "features": {}}
    spec_path = _spec_file(_files(tmp_path, tx=tx), data)
    with pytest.raises(DataError) as exc:
        read_dataset(load_spec(spec_path))
    assert _one_line(exc) == (
        f"{tmp_path / 'tx.csv'}: column 'when' cannot be read as ISO date or timestamp (e.g. 2020-01-05, "
        "2020-01-05T12:30:00, 2020-01-05T12:30:00+02:00): 1 value(s) fail, e.g. '2020-01-32T12:00:00+02:00' "
        f"in data row 2 (spec key transactions.timestamp in {spec_path})"
    )


def test_missing_ids_and_repeated_ids(tmp_path: Path) -> None:
    spec_path = _spec_file(_files(tmp_path, tx=TX_CSV.replace("\n2,11,", "\n,11,")), GOOD)
    with pytest.raises(DataError, match=r"tx\.csv: column 'user' has 1 empty value\(s\).*transactions\.customer_id"):
        read_dataset(load_spec(spec_path))
    spec_path = _spec_file(_files(tmp_path, items=ITEMS_CSV + "10,Shirt again,a,blue\n"), GOOD)
    with pytest.raises(DataError, match=r"items\.csv: column 'item' has 1 repeated id\(s\), e\.g\. 10"):
        read_dataset(load_spec(spec_path))
