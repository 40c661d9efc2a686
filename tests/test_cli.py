import json

import pytest

from stockdag.cli import build_parser, main


def test_predict_json(small, capsys):
    assert main(["predict", "ibm", "--as-of", "2012-06-01", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["symbol"] == "IBM" and len(d["trace"]) == 12


def test_predict_text(small, capsys):
    assert main(["predict", "MSFT", "--as-of", "2012-06-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MSFT as of 2012-06-01") and "winner" in out


@pytest.mark.parametrize("argv, message", [
    (["predict", "NOPE"], "unknown symbol 'NOPE'; available: AAPL"),
    (["predict", "A/B"], "malformed symbol"),
    (["predict", "AAPL", "--as-of", "2031-01-01"], "after the last bundled AAPL price"),
    (["predict", "AAPL", "--as-of", "01/02/2012"], "malformed date"),
    (["predict", "AAPL", "--source", "csv", "--data-dir", "/nonexistent"], "does not exist"),
])
def test_bad_input_is_one_clear_line_and_nonzero(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_symbols(capsys):
    assert main(["symbols"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert "FB       prices 2012-05-18 .. 2013-03-01 (196 days); refit: none (" in lines[1] and "too little history" in lines[1]


def test_symbols_first_usable_date_is_the_first_that_predicts(small, capsys):
    """Issue 16 item 14: the range `stockdag symbols` prints is the one predict accepts (at its first day, not the day before)."""
    import datetime as dt
    import re

    assert main(["symbols"]) == 0
    ibm = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("IBM"))
    first = re.search(r"as-of (\S+) ", ibm).group(1)
    assert main(["predict", "IBM", "--as-of", first]) == 0
    capsys.readouterr()
    before = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
    assert main(["predict", "IBM", "--as-of", before]) == 2
    assert "at least 150 are needed" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--data-dir", "{tmp}"], "no price files (<SYMBOL>.csv) in"),
    (["--source", "yfinance"], "the yfinance source cannot list its symbols"),
])
def test_symbols_of_an_empty_source_is_an_error(argv, message, tmp_path, capsys):
    """Issue 16 item 14: an empty folder or a live source is a clear error and a non-zero exit, not a blank line and 0."""
    assert main(["symbols", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: ") and message in err and err.count("\n") == 1


def test_every_option_is_explained():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"stockdag {name} {action.option_strings or action.dest} has no help"


def test_cluster_status_has_a_header(tmp_path, capsys):
    """Issue 16 item 15: `cluster status` printed rows without saying what the columns are."""
    import dask

    info = {"cluster_id": "local-2-0123abcd", "kind": "local", "pid": 2**22 + 1, "scheduler": "tcp://127.0.0.1:40001",
            "dashboard": "http://127.0.0.1:40002/status", "workers": ["a", "b"]}
    (tmp_path / "local-2-0123abcd.json").write_text(json.dumps(info))
    with dask.config.set({"stockdag.deploy.state_dir": str(tmp_path)}):
        assert main(["cluster", "status"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["CLUSTER", "KIND", "STATE", "WORKERS", "SCHEDULER", "DASHBOARD"]
    assert row.split()[0] == "local-2-0123abcd" and row.split()[3:] == ["2", "tcp://127.0.0.1:40001", "http://127.0.0.1:40002/status"]


@pytest.mark.parametrize("command", [["sweep"], ["cluster", "plan"]])
def test_a_yaml_error_names_its_line_and_column(command, tmp_path, capsys):
    """Issue 16 item 15: YAML errors dropped the line and column (and the sweep's was a traceback)."""
    path = tmp_path / "bad.yaml"
    path.write_text("kind: local\nworkers: [1, 2\nrates: 3\n")
    assert main([*command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"stockdag: error: {path}, line 3, column ") and "not valid YAML" in err, err
    assert err.count("\n") == 1


def test_a_date_after_the_data_is_outside_the_data_not_insufficient_history():
    import stockdag
    from stockdag.errors import InsufficientHistory, OutsideData

    with pytest.raises(OutsideData, match="after the last bundled AAPL price") as info:
        stockdag.predict("AAPL", "2031-01-01")
    assert type(info.value).__name__ == "OutsideData"  # the kind a server reports and bench counts
    assert isinstance(info.value, InsufficientHistory) and info.value.http_status == 422


def test_a_weekend_date_says_it_was_answered_from_the_friday_close(small, capsys):
    assert main(["predict", "MSFT", "--as-of", "2012-06-02", "--json"]) == 0  # a Saturday
    d = json.loads(capsys.readouterr().out)
    assert (d["as_of"], d["requested_as_of"]) == ("2012-06-01", "2012-06-02")
    assert d["note"] == "2012-06-02 is not a trading day of MSFT: predicted from the last close before it (2012-06-01)"
    assert main(["predict", "MSFT", "--as-of", "2012-06-01", "--json"]) == 0  # a trading day: nothing to say
    assert "note" not in json.loads(capsys.readouterr().out)
    assert main(["predict", "MSFT", "--as-of", "2012-06-02"]) == 0
    assert "  note: 2012-06-02 is not a trading day of MSFT" in capsys.readouterr().out


def test_a_command_run_in_process_quiets_distributed_only_while_it_runs(monkeypatch, capsys):
    # a later cluster in this process ships dask's global config to the processes it starts (the ssh kind does):
    # the command's quieter level must not outlive it
    import logging

    import dask

    from stockdag import cli

    log = logging.getLogger("distributed")
    before = (dask.config.get("logging.distributed", None), log.level)
    seen = {}

    def run(args):
        seen["during"] = (dask.config.get("logging.distributed", None), log.level)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "symbols", run)
    assert main(["symbols"]) == 0
    assert seen["during"] == ("warning", logging.WARNING)
    assert (dask.config.get("logging.distributed", None), log.level) == before
