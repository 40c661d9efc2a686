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
    (["predict", "AAPL", "--as-of", "01/02/2012"], "malformed as-of date"),
    (["predict", "AAPL", "--source", "csv", "--data-dir", "/nonexistent"], "does not exist"),
])
def test_bad_input_is_one_clear_line_and_nonzero(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("stockdag: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_symbols(capsys):
    assert main(["symbols"]) == 0
    assert capsys.readouterr().out.split() == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]


def test_every_option_is_explained():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"stockdag {name} {action.option_strings or action.dest} has no help"
