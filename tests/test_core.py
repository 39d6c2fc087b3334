"""flagship.core outside the notebooks' own examples: the failures a user meets first."""

from __future__ import annotations

import ast
import gzip
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from flagship.core.config import PROJECTS, load_params, project_slug, repo_root
from flagship.core.data import SchemaError, read_csv
from flagship.core.logs import configure_logging, trace

SCHEMA = {
    "header": True,
    "columns": [{"name": "id", "dtype": "int"}, {"name": "amount", "dtype": "float", "min": 0}, {"name": "day", "dtype": "date"}],
}


def test_csv_missing_a_required_column_names_file_and_column(tmp_path: Path):
    path = tmp_path / "orders.csv"
    path.write_text("id,day\n1,2024-01-01\n")
    with pytest.raises(SchemaError) as err:
        read_csv(path, SCHEMA)
    assert str(path) in str(err.value) and "'amount'" in str(err.value) and err.value.rule == "required column"


def test_gzip_csv_with_bad_values_names_the_rule(tmp_path: Path):
    path = tmp_path / "orders.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("id,amount,day\n1,-3.5,2024-01-01\n")
    with pytest.raises(SchemaError, match=r"orders.csv.gz: column 'amount' breaks rule '>= 0'"):
        read_csv(path, SCHEMA)
    path.write_bytes(gzip.compress(b"id,amount,day\n1,3.5,not-a-date\n"))
    with pytest.raises(SchemaError, match=r"column 'day' breaks rule 'dtype date'"):
        read_csv(path, SCHEMA)


def test_valid_csv_gets_schema_dtypes(tmp_path: Path):
    path = tmp_path / "ok.csv"
    path.write_text("id,amount,day,extra\n1,3.5,2024-01-01,x\n")
    df = read_csv(path, SCHEMA)
    assert str(df["id"].dtype) == "Int64" and pd.api.types.is_datetime64_any_dtype(df["day"]) and "extra" in df


def test_every_project_has_an_overview_and_ci_defaults_match_params():
    """The `parameters` cell's defaults are the ci profile, so nbmake and the runner's ci run agree."""
    import papermill

    for slug in PROJECTS:
        nbs = repo_root() / "nbs" / slug
        assert (nbs / "00_overview.ipynb").exists(), slug
        ci = load_params(slug, "ci")
        for nb in sorted(nbs.glob("[0-9][0-9]_*.ipynb")):
            declared = papermill.inspect_notebook(str(nb))
            for name, value in ci.items():
                if name in declared:
                    assert ast.literal_eval(declared[name]["default"]) == value, (nb, name, declared[name]["default"], value)


def test_unknown_profile_and_project_are_named():
    with pytest.raises(ValueError, match="profile='nightly'"):
        load_params("01", "nightly")
    with pytest.raises(KeyError, match="unknown project '99'"):
        project_slug("99")


def test_json_log_lines_carry_trace_and_project(capsys):
    import io

    buf = io.StringIO()
    configure_logging(stream=buf)
    with trace("req-1", project="10-recommender-system"):
        logging.getLogger("flagship.test").warning("slow", extra={"ms": 12.5})
    line = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert (
        line["trace_id"] == "req-1"
        and line["project"] == "10-recommender-system"
        and line["level"] == "WARNING"
        and line["ms"] == 12.5
    )
