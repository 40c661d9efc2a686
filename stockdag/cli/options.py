"""Value types of the ``stockdag`` command line's options, and a parser whose usage errors are one line.

Each type is a function of the option's text that returns the value or raises
``argparse.ArgumentTypeError`` with a message saying what is wrong, which argparse
reports as ``argument --x: <message>``; :class:`Parser` prints that as one line
and exits with status 2. Types that need a registry (strategies) import it only
when the option is given, so ``stockdag --help`` stays fast.
"""
from __future__ import annotations

import argparse
import difflib
import math
import os
import re

from ..errors import InvalidRequest

#: ``default: stockdag.x.y`` in an option's help: the configuration key whose value is the default
_CONFIG_DEFAULT = re.compile(r"default: (stockdag(?:\.\w+)+)")


def _config_text(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "none"
    return str(value)


class ConfigDefaultsHelp(argparse.HelpFormatter):
    """Help that shows a default given as a configuration key with its value: ``default: 60, stockdag.serve.deadline``.

    The value is read when the help is printed, so it is the one this run would use (a
    ``DASK_STOCKDAG__...`` variable or a user YAML included).
    """

    def _expand_help(self, action):
        import dask

        def value(m: re.Match) -> str:
            missing = object()
            v = dask.config.get(m.group(1), default=missing)
            return m.group(0) if v is missing else f"default: {_config_text(v)}, {m.group(1)}"

        return _CONFIG_DEFAULT.sub(value, super()._expand_help(action))


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr and exit status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", ConfigDefaultsHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"stockdag: error: {message} (see `{self.prog} --help`)\n")

    def option_strings(self) -> list[str]:
        return [o for a in self._actions for o in a.option_strings if o.startswith("--")]


def did_you_mean(parser: Parser, unknown: list[str]) -> str:
    """``unrecognized arguments: --as_of (did you mean --as-of?)`` for the options ``parser`` does not know."""
    known = parser.option_strings()
    hints = []
    for token in unknown:
        name = token.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        dashed = name.replace("_", "-")
        match = [dashed] if dashed in known else difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        if match:
            hints.append(f"did you mean {match[0]}?")
    return f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")


def _integer(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def integer(minimum: int):
    """An integer of at least ``minimum``."""
    return _integer(minimum)


positive_int = _integer(1)
non_negative_int = _integer(0)


def _number(*, minimum: float = 0.0, strict: bool = True):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'greater than' if strict else 'at least'} {minimum:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_float = _number()
non_negative_float = _number(strict=False)


def port(minimum: int):
    def parse(text: str) -> int:
        value = _integer(minimum)(text)
        if value > 65535:
            raise argparse.ArgumentTypeError(f"a TCP port is at most 65535, got {value}")
        return value

    parse.__name__ = "port"
    return parse


def iso_date(text: str) -> str:
    """YYYY-MM-DD, checked (the message says which part is wrong); returned in ISO form."""
    from ..pipeline.request import parse_date

    try:
        return parse_date(text, "date").isoformat()
    except (InvalidRequest, AttributeError) as exc:
        raise argparse.ArgumentTypeError(getattr(exc, "message", f"malformed date {text!r}: expected YYYY-MM-DD")) from None


def symbol(text: str) -> str:
    from ..pipeline.request import normalise_symbol

    try:
        return normalise_symbol(text)
    except InvalidRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def strategy(text: str) -> str:
    """A placement strategy name (the registry is imported only when the option is given)."""
    from ..placement.registry import check_strategy

    try:
        return check_strategy(text)
    except InvalidRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def strategies(text: str) -> tuple[str, ...]:
    """Comma-separated strategy names, or 'all'."""
    if text.strip() == "all":
        from ..placement.registry import STRATEGIES

        return tuple(STRATEGIES)
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated strategy names, or 'all'")
    return tuple(dict.fromkeys(strategy(x) for x in names))


def scheduler_address(text: str) -> str:
    text = text.strip()
    host = text.split("://", 1)[-1]
    if not text or not host or host.startswith(":"):
        raise argparse.ArgumentTypeError(f"expected a scheduler address such as tcp://10.0.0.5:8786, got {text!r}")
    return text


def http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000, got {text!r}")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}: {exc}") from None
    return text.strip()


def directory(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"folder {text!r} does not exist" if not os.path.exists(text) else f"{text!r} is not a folder")
    return text


def output_dir(text: str) -> str:
    """A folder to write into: an existing folder, or a new one whose parent exists (made when written)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"folder {parent!r} does not exist")
    return text


def _writable_file(text: str, suffixes: tuple[str, ...], formats: str) -> str:
    if not text.lower().endswith(suffixes):
        raise argparse.ArgumentTypeError(f"cannot tell the format of {text!r}: use a {formats} file name")
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(text) and not os.access(text, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: permission denied")
    return text


def records_file(text: str) -> str:
    """An output .parquet/.csv path that can be written (checked before any request is sent)."""
    return _writable_file(text, (".parquet", ".pq", ".csv"), ".parquet or .csv")


def yaml_file(text: str) -> str:
    """An output .yaml/.yml path that can be written (checked before the work that produces it)."""
    return _writable_file(text, (".yaml", ".yml"), ".yaml or .yml")


def run_folder(text: str) -> str:
    """A measured run folder (one holding config.json, as `stockdag sweep` writes)."""
    directory(text)
    if not os.path.exists(os.path.join(text, "config.json")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run folder (no config.json)")
    return text


def run_id(text: str) -> str:
    if not text.strip() or text in (".", "..") or "/" in text or os.sep in text:
        raise argparse.ArgumentTypeError(f"expected a folder name (no path separators), got {text!r}")
    return text


def host_name(text: str) -> str:
    t = text.strip()
    if not t or "/" in t or any(c.isspace() for c in t):
        raise argparse.ArgumentTypeError(f"expected a host name or IP address to bind, got {text!r}")
    return t


def arrivals(text: str) -> str:
    """An open-loop arrival process named by the load generator (imported only when the option is given)."""
    from ..lab.bench.vocabulary import ARRIVALS

    if text not in ARRIVALS:
        raise argparse.ArgumentTypeError(f"unknown arrivals {text!r}; choose one of: {', '.join(ARRIVALS)}")
    return text


def instance_type(text: str) -> str:
    """An EC2 instance type of the price table (stockdag.deploy.prices)."""
    from ..deploy import prices

    if text not in prices.EC2_PRICES:
        raise argparse.ArgumentTypeError(f"instance type {text!r} is not in the price table ({prices.PRICES_DATE}); "
                                         f"known: {', '.join(prices.EC2_PRICES)}")
    return text


def ami_id(text: str) -> str:
    """An AMI id, as a kind ec2 cluster spec requires it."""
    from ..deploy.spec import AMI_ID

    if not AMI_ID.match(text):
        raise argparse.ArgumentTypeError(f"expected an AMI id such as ami-0123456789abcdef0, got {text!r}")
    return text


def security_group_id(text: str) -> str:
    """A security group id, as a kind ec2 cluster spec requires it."""
    from ..deploy.spec import SECURITY_GROUP_ID

    if not SECURITY_GROUP_ID.match(text):
        raise argparse.ArgumentTypeError(f"expected a security group id such as sg-0123456789abcdef0, got {text!r}")
    return text


def pipeline_spec(text: str):
    """A pipeline spec YAML file (or a name in experiments/pipelines), read and validated: the :class:`PipelineSpec`."""
    from ..pipeline.spec import PipelineSpecError, load_pipeline

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a pipeline spec YAML file or a name in experiments/pipelines, got ''")
    try:
        return load_pipeline(text)
    except PipelineSpecError as exc:
        raise argparse.ArgumentTypeError(" ".join(exc.message.split())) from None
