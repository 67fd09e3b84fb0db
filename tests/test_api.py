"""tcpscope.sessions() and tcpscope.handshakes() against the commands' --json output.

Every record must equal the JSON object the command writes for the same capture
and options, field by field (the record's fields are the object's keys, `from_`
spelled `from`), for every capture the tests build, the bundled sample, the
fidelity capture and its option sets, and (marked corpus) tcpdump's captures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getopt
import inspect
import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tcpscope
from tcpscope.cli import miruo, miruo_spec, tcpeek, tcpeek_spec
from tcpscope.cli.optspec import Command
from tests.cli.test_tcpeek_cli import LOCAL
from tests.cli.test_tcpeek_cli import mix as tcpeek_mix
from tests.scenarios.test_miruo_scenarios import SCENARIOS
from tests.support import frames as fr
from tests.support.corpus import corpus_files
from tests.support.pcapwrite import write_pcap
from tests.track.test_feed_plain import MODES as PLAIN_MODES
from tests.track.test_feed_plain import Mix as PlainMix
from tests.track.test_light import Mix as HandshakeMix

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.pcap"
FIDELITY = REPO.parent / "shared" / "fidelity"
TEXT_ONLY = {"quiet", "colour"}  # options that change only the text view


pytestmark = pytest.mark.usefixtures("utc")  # tests/conftest.py


# --- comparing a record with a JSON object, independently of records.json_object


def same_top(record: Any, obj: dict[str, Any], where: str) -> None:
    """A record and a whole JSON line: `type` and `schema`, then every field."""
    body = dict(obj)
    assert (body.pop("type"), body.pop("schema")) == (record.TYPE, tcpscope.SCHEMA)
    same(record, body, where)


def same(record: Any, obj: dict[str, Any], where: str = "") -> None:
    names = {f.name.rstrip("_") for f in dataclasses.fields(record)}
    omitted = {n for n in names - set(obj) if getattr(record, n, None) is None}
    assert set(obj) | omitted == names, f"{where}: keys {sorted(set(obj) ^ names)}"
    for key, value in obj.items():
        attr = getattr(record, key if hasattr(record, key) else key + "_")
        _same_value(attr, value, f"{where}.{key}")


def _same_value(attr: Any, value: Any, where: str) -> None:
    if dataclasses.is_dataclass(attr):
        assert isinstance(value, dict), where
        same(attr, value, where)
    elif isinstance(attr, tuple):
        assert isinstance(value, list) and len(attr) == len(value), where
        for i, (a, v) in enumerate(zip(attr, value, strict=True)):
            _same_value(a, v, f"{where}[{i}]")
    else:
        assert type(attr) is type(value) and attr == value, f"{where}: {attr!r} != {value!r}"


def json_lines(
    main: Callable[[list[str]], int], argv: list[str], kind: str
) -> list[dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue()
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    return [o for o in objects if o["type"] == kind]


def api_keywords(command: Command, argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The API keywords for a command line's options (Python values), and its operands."""
    pairs, rest = getopt.gnu_getopt(argv, command.getopt_short(), command.getopt_long())
    table = command.by_name()
    kwargs: dict[str, Any] = {}
    for name, text in pairs:
        opt = table[name]
        if opt.dest in TEXT_ONLY:
            continue
        assert opt.api, f"{name} has no API keyword"
        if not opt.takes_value:
            kwargs[opt.api] = True
        elif opt.arg == "[0|1]":
            kwargs[opt.api] = text == "1"
        elif opt.append:
            kwargs[opt.api] = (*kwargs.get(opt.api, ()), text)
        elif opt.api in ("dpi_mode",):
            kwargs[opt.api] = text
        else:
            kwargs[opt.api] = int(text)
    return kwargs, rest


def check_sessions(capture: Path, argv: list[str]) -> int:
    objects = json_lines(miruo.main, ["--json", *argv, "-f", str(capture)], "session")
    kwargs, rest = api_keywords(miruo_spec.COMMAND, argv)
    with tcpscope.sessions(capture, bpf=" ".join(rest) or None, **kwargs) as stream:
        got = list(stream)
    assert len(got) == len(objects)
    for record, obj in zip(got, objects, strict=True):
        assert isinstance(record, tcpscope.Session)
        same_top(record, obj, f"session {obj['id']}")
    return len(got)


# --- miruo


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if n != "live"))
def test_sessions_equal_json_on_every_scenario(name: str, tmp_path: Path) -> None:
    build, argv = SCENARIOS[name]
    capture = tmp_path / f"{name}.pcap"
    write_pcap(capture, build())
    check_sessions(capture, argv)


def test_sessions_equal_json_on_the_sample() -> None:
    assert check_sessions(SAMPLE, ["--all"]) > 0
    check_sessions(SAMPLE, [])


def fidelity_cases() -> list[tuple[str, list[str]]]:
    path = FIDELITY / "CASES"
    if not path.is_file():
        return []
    cases = []
    for line in path.read_text().splitlines():
        name, *argv = line.split()
        if "--live" not in argv:
            cases.append((name, argv))
    return cases


@pytest.mark.skipif(not (FIDELITY / "capture.pcap").is_file(), reason="no ../shared/fidelity")
@pytest.mark.parametrize(("name", "argv"), fidelity_cases())
def test_sessions_equal_json_on_the_fidelity_capture(name: str, argv: list[str]) -> None:
    shown = check_sessions(FIDELITY / "capture.pcap", argv)
    assert shown > 0


def test_the_fidelity_cases_are_there() -> None:
    if not (FIDELITY / "CASES").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{FIDELITY} is missing")
        pytest.skip(f"{FIDELITY} is missing")
    assert len(fidelity_cases()) >= 20


@pytest.fixture(scope="module")
def plain_mixes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tests/track/test_feed_plain.py's awkward mixes: Ethernet, cut at 90 bytes, SLL2."""
    folder = tmp_path_factory.mktemp("api-plain")
    frames = PlainMix(seed=5).build(1200)
    paths = {name: folder / f"{name}.pcap" for name in ("ether", "cut", "sll2")}
    write_pcap(paths["ether"], frames)
    write_pcap(paths["cut"], frames, snaplen=90)
    sll2 = PlainMix(seed=6, link="sll2").build(400)
    write_pcap(paths["sll2"], sll2, linktype=fr.LINKTYPES["sll2"])
    return paths


@pytest.mark.parametrize("argv", [m for m in PLAIN_MODES if "--json" not in m], ids=" ".join)
def test_sessions_equal_json_on_the_awkward_mixes(
    plain_mixes: dict[str, Path], argv: list[str]
) -> None:
    if "-s" in argv:  # the statistics interval changes no session
        at = argv.index("-s")
        argv = argv[:at] + argv[at + 2 :]
    for path in plain_mixes.values():
        check_sessions(path, argv)


# --- tcpeek


@pytest.mark.parametrize(
    "argv",
    [
        ["--local", LOCAL],
        ["--local", LOCAL, "--icmp"],
        ["--local", LOCAL, "-t", "1", "web:TX@*:80", ":TX@*:81"],
        ["--local", "198.18.0.0/24", "--local", "fd00::1", "--icmp", "-c", "2"],
    ],
)
def test_handshakes_equal_json(argv: list[str], tmp_path: Path) -> None:
    capture = tmp_path / "mix.pcap"
    write_pcap(capture, tcpeek_mix())
    objects = json_lines(tcpeek.main, ["-q", "--json", *argv, "-r", str(capture)], "handshake")
    kwargs, rest = api_keywords(tcpeek_spec.COMMAND, [a for a in argv if a != "-q"])
    got = list(tcpscope.handshakes(capture, filters=rest, **kwargs))
    assert len(got) == len(objects) >= 5
    for record, obj in zip(got, objects, strict=True):
        assert isinstance(record, tcpscope.Handshake)
        same_top(record, obj, "handshake")


def test_handshakes_equal_json_on_the_awkward_mix(tmp_path: Path) -> None:
    """tests/track/test_light.py's mix of plain and odd handshakes, with its filters."""
    capture = tmp_path / "light.pcap"
    write_pcap(capture, HandshakeMix(seed=11).build(1500))
    filters = ["web:TX@*:80", "tls:TX@198.19.0.1:443,198.19.0.2:443", ":TX@198.19.0.3:*"]
    argv = ["-t", "2", "--icmp", "--local", "198.18.0.0/16"]
    objects = json_lines(
        tcpeek.main, ["-q", "--json", *argv, "-r", str(capture), *filters], "handshake"
    )
    got = list(
        tcpscope.handshakes(capture, local="198.18.0.0/16", timeout=2, icmp=True, filters=filters)
    )
    assert len(got) == len(objects) > 1000
    for record, obj in zip(got, objects, strict=True):
        same_top(record, obj, "handshake")


@pytest.mark.corpus
def test_records_equal_json_on_the_corpus() -> None:
    """tcpdump's captures: wherever a command reads a file, the API gives its objects;
    where the command fails, the API raises."""
    everywhere = ["0.0.0.0/0", "::/0"]
    runs: list[tuple[Callable[[list[str]], int], list[str], str, Callable[[Path], Any]]] = [
        (
            miruo.main,
            ["--json", "--all", "-f"],
            "session",
            lambda path: tcpscope.sessions(path, show_all=True),
        ),
        (
            tcpeek.main,
            ["--json", "-q", "--icmp", *[f"--local={n}" for n in everywhere], "-r"],
            "handshake",
            lambda path: tcpscope.handshakes(path, local=everywhere, icmp=True),
        ),
    ]
    compared = {"session": 0, "handshake": 0}
    for capture in corpus_files():
        for main, argv, kind, api in runs:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*argv, str(capture)])
            if code != 0:
                with pytest.raises(tcpscope.TcpscopeError):
                    list(api(capture))
                continue
            objects = [json.loads(line) for line in out.getvalue().splitlines()]
            wanted = [o for o in objects if o["type"] == kind]
            got = list(api(capture))
            assert len(got) == len(wanted), capture.name
            for record, obj in zip(got, wanted, strict=True):
                same_top(record, obj, capture.name)
            compared[kind] += len(got)
    assert compared["session"] > 50 and compared["handshake"] > 50, compared


# --- sources


def test_every_kind_of_source_gives_the_same_records(tmp_path: Path) -> None:
    expected = list(tcpscope.sessions(str(SAMPLE), show_all=True))
    assert expected and expected == list(tcpscope.sessions(SAMPLE, show_all=True))
    with open(SAMPLE, "rb") as handle:
        assert list(tcpscope.sessions(handle, show_all=True)) == expected
    data = SAMPLE.read_bytes()
    assert list(tcpscope.sessions(io.BytesIO(data), show_all=True)) == expected
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as sink:
            sink.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read_end, "rb") as pipe:
        assert list(tcpscope.sessions(pipe, show_all=True)) == expected
    writer.join(10)


def test_records_are_frozen_and_hashable() -> None:
    record = next(iter(tcpscope.sessions(SAMPLE, show_all=True)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.id = 5  # type: ignore[misc]
    assert hash(record) == hash(dataclasses.replace(record))


# --- bad options: UsageError with the command's message


def cli_message(main: Callable[[list[str]], int], argv: list[str], prog: str) -> str:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(argv) == 1
    first = err.getvalue().splitlines()[0]
    assert first.startswith(f"{prog}: ")
    return first[len(prog) + 2 :]


@pytest.mark.parametrize(
    ("keywords", "argv"),
    [
        ({"retransmit_ms": -1}, ["--retransmit=-1"]),
        ({"retransmit_ms": "abc"}, ["--retransmit=abc"]),
        ({"retransmit_ms": 1.5}, ["--retransmit=1.5"]),
        ({"rst_mode": 3}, ["--rst=3"]),
        ({"syn": 2}, ["--syn=2"]),
        ({"session_limit": -5}, ["--session-limit=-5"]),
        ({"view_data": "x"}, ["--view-data=x"]),
        ({"dpi_mode": "ftp"}, ["--dpi-mode=ftp"]),
    ],
)
def test_bad_sessions_options_raise_the_commands_message(
    keywords: dict[str, Any], argv: list[str]
) -> None:
    message = cli_message(miruo.main, [*argv, "-f", str(SAMPLE)], "miruo")
    with pytest.raises(tcpscope.UsageError) as raised:
        tcpscope.sessions(SAMPLE, **keywords)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("keywords", "argv"),
    [
        ({"timeout": 0}, ["--timeout=0"]),
        ({"checksum": 3}, ["--checksum=3"]),
        ({"local": "x"}, ["--local=x"]),
        ({"local": ["198.18.0.1", "nope"]}, ["--local=198.18.0.1", "--local=nope"]),
        ({"buffer_mb": 0}, ["--buffer=0"]),
        ({"local": ()}, []),  # a file needs --local
        ({"local": LOCAL, "filters": ["web:XX@*:80"]}, ["--local", LOCAL, "web:XX@*:80"]),
    ],
)
def test_bad_handshakes_options_raise_the_commands_message(
    keywords: dict[str, Any], argv: list[str]
) -> None:
    message = cli_message(tcpeek.main, [*argv, "-r", str(SAMPLE)], "tcpeek")
    with pytest.raises(tcpscope.TcpscopeError) as raised:
        tcpscope.handshakes(SAMPLE, **keywords)
    assert str(raised.value) == message


def test_other_bad_input() -> None:
    with pytest.raises(TypeError):
        tcpscope.sessions(SAMPLE, retransmit=5)  # type: ignore[call-arg]
    with pytest.raises(tcpscope.UsageError, match=r"^option --retransmit: True is not a number$"):
        tcpscope.sessions(SAMPLE, retransmit_ms=True)
    with pytest.raises(tcpscope.UsageError, match=r"^option --all: 1 is not True or False$"):
        tcpscope.sessions(SAMPLE, show_all=1)  # type: ignore[arg-type]
    with pytest.raises(tcpscope.FilterSyntaxError):
        tcpscope.sessions(SAMPLE, bpf="port and and")
    with pytest.raises(tcpscope.CaptureError, match="nonexistent"):
        tcpscope.sessions("/nonexistent/x.pcap")
    with pytest.raises(tcpscope.UsageError):
        tcpscope.sessions(42)  # type: ignore[arg-type]


# --- the API is the table's


@pytest.mark.parametrize(
    ("function", "spec", "extra"),
    [
        (tcpscope.sessions, miruo_spec, {"bpf"}),
        (tcpscope.handshakes, tcpeek_spec, {"filters"}),
    ],
)
def test_keywords_and_defaults_are_the_option_tables(
    function: Callable[..., Any], spec: Any, extra: set[str]
) -> None:
    params = inspect.signature(function).parameters
    keywords = {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY}
    table = {o.api: o for o in spec.COMMAND.options if o.api}
    assert keywords - extra == set(table)
    defaults = spec.Options()
    for name, opt in table.items():
        default = params[name].default
        if opt.dest == "dpi":
            assert default == "tcp" and defaults.dpi is None
        elif opt.append:
            assert tuple(default) == getattr(defaults, opt.dest)
        else:
            assert default == getattr(defaults, opt.dest), name


def test_all_is_the_public_surface() -> None:
    assert set(tcpscope.__all__) >= {
        "sessions", "handshakes", "sessions_frame", "handshakes_frame", "UsageError",
        "Session", "Handshake",
    }  # fmt: skip
    for name in tcpscope.__all__:
        assert getattr(tcpscope, name) is not None
    assert (Path(tcpscope.__file__).parent / "py.typed").is_file()


# --- stopping


def test_close_and_break_release_the_capture() -> None:
    stream = tcpscope.sessions(SAMPLE, show_all=True)
    assert repr(stream) == f"RecordStream({str(SAMPLE)!r}, file)"
    first = next(stream)
    assert isinstance(first, tcpscope.Session)
    stream.close()
    assert list(stream) == []
    assert stream.closed and repr(stream).endswith(", closed)")  # released
    with tcpscope.sessions(SAMPLE, show_all=True) as inside:
        next(inside)
    assert inside.closed
    stream = tcpscope.handshakes(SAMPLE, local="0.0.0.0/0")
    capture = stream._cap
    for _ in stream:
        break
    assert not stream.closed  # still referenced: it could go on
    del stream  # the last reference: the capture goes with it
    assert capture._reader is None
