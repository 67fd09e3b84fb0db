"""`tcpeek --metrics` and `miruo --metrics` scraped by a real Prometheus (Debian's
`prometheus`, installed by the test run when missing) in a lab namespace.

Both watch the client's veth while the client makes a known mix of handshakes:
served, refused (RST), dropped (timeout) and rejected with ICMP port unreachable,
over IPv4 and IPv6 (the server namespace's nft rules of test_tcpeek_live). Then
Prometheus's HTTP API must say what the clients saw: handshakes by result,
histogram_quantile within the range of the measured handshake times, the contrib
recording rules evaluating to the same ratios, miruo's session counts, and every
PromQL expression of contrib/grafana/tcpscope.json parsing and returning data.
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tcpscope.output.metrics import BUCKETS_S
from tests.live.prometheus_helpers import ROOT, Prometheus
from tests.live.tcpeek_helpers import TcpeekProcess, finish_attempts, job, start_attempts
from tests.live.test_tcpeek_live import (
    BLACKHOLE,
    CLOSED,
    ICMP,
    OPEN,
    SERVER_RULES,
    check_attempts,
    expected_verdict,
)
from tests.support.netns import Lab, require_root_and_tools

TCPEEK_PORT, MIRUO_PORT = 9470, 9471
DASHBOARD = ROOT / "contrib" / "grafana" / "tcpscope.json"


class Run:
    """What the module's one traffic run left: the clients' attempts, tcpeek's
    verdicts, and the Prometheus that scraped both commands."""

    def __init__(self, lab: Lab, prom: Prometheus, attempts: list[dict[str, Any]],
                 verdicts: list[dict[str, Any]]) -> None:  # fmt: skip
        self.lab, self.prom, self.attempts, self.verdicts = lab, prom, attempts, verdicts


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    require_root_and_tools()
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="tcpscope-prom-") as work:
        workdir = Path(work)
        lab.sysctl(lab.client_ns, "net.ipv4.tcp_syn_retries", 1)
        lab.nft(lab.server_ns, SERVER_RULES)
        lab.start_server([OPEN], mode="hold")
        tcpeek = TcpeekProcess(lab.popen(
            lab.client_ns, sys.executable, "-m", "tcpscope", "tcpeek", "-i", lab.client_if,
            "--icmp", "-t", "3", "-q", "--json", "-U", workdir / "tcpeek.sock",
            "--metrics", f"127.0.0.1:{TCPEEK_PORT}", f"web:TX@*:{OPEN}",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
        tcpeek.wait_listening()
        miruo = lab.popen(
            lab.client_ns, sys.executable, "-m", "tcpscope", "miruo", "-i", lab.client_if,
            "--json", "--metrics", f"127.0.0.1:{MIRUO_PORT}",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        prom = Prometheus(lab, lab.client_ns, workdir, {"tcpeek": TCPEEK_PORT,
                                                         "miruo": MIRUO_PORT}).start()
        try:
            prom.wait_up("tcpeek")
            prom.wait_up("miruo")  # miruo binds /metrics once its capture is open
            s4, s6 = lab.server4, lab.server6
            jobs = [job(s4, OPEN), job(s4, OPEN), job(s4, OPEN), job(s6, OPEN), job(s6, OPEN)]
            jobs += [job(s4, CLOSED), job(s4, CLOSED), job(s6, CLOSED)]
            jobs += [job(s4, BLACKHOLE), job(s6, BLACKHOLE), job(s4, ICMP), job(s6, ICMP)]
            attempts = finish_attempts(start_attempts(lab, jobs), timeout=60)
            check_attempts(attempts, jobs)
            keys = {(lab.client6 if ":" in a["host"] else lab.client4, a["local_port"])
                    for a in attempts}  # fmt: skip
            tcpeek.wait_verdicts(keys, timeout=20)
            prom.wait_for('sum(tcpeek_handshakes_total{filter="TX"})', len(jobs))
            yield Run(lab, prom, attempts, tcpeek.verdicts)
        finally:
            prom.stop()
            miruo.terminate()
            tcpeek.interrupt()


def test_handshakes_by_result_equal_what_the_clients_saw(run: Run) -> None:
    want = Counter(expected_verdict(a) for a in run.attempts)
    assert want == {"success": 5, "reject": 3, "timeout": 2, "unreach": 2}
    got = run.prom.values('sum by (result) (tcpeek_handshakes_total{filter="TX"})')
    assert {dict(k)["result"]: v for k, v in got.items()} == want
    web = run.prom.values('tcpeek_handshakes_total{filter="web",direction="TX"}')
    assert {dict(k)["result"]: v for k, v in web.items()} == {**want, "reject": 0,
                                                               "timeout": 0, "unreach": 0}
    assert run.prom.scalar('sum(tcpeek_handshakes_total{direction="RX"})') == 0
    assert run.prom.scalar('tcpeek_unreachable_total{filter="TX",code="port"}') == 2
    assert run.prom.scalar('sum(tcpeek_unreachable_total{filter="TX"})') == 2
    # the ICMP port's first SYN is dropped, so each of those two handshakes has one copy
    assert run.prom.scalar('tcpeek_syn_retransmissions_total{filter="TX"}') >= 2
    assert run.prom.scalar('sum(tcpeek_capture_dropped_total)') == 0
    assert run.prom.scalar("tcpeek_pending_handshakes") == 0
    assert run.prom.scalar("tcpeek_capture_packets_total") > 0
    assert run.prom.scalar('count(tcpeek_build_info{version="0.1.0"})') == 1
    assert run.prom.scalar('count(process_cpu_seconds_total{job="tcpeek"})') == 1


def _bucket_bounds(lo: float, hi: float) -> tuple[float, float]:
    """The histogram can place a quantile anywhere in the buckets holding lo..hi."""
    bounds = (0.0, *BUCKETS_S)
    return bounds[max(bisect.bisect_left(BUCKETS_S, lo), 0)], BUCKETS_S[
        min(bisect.bisect_left(BUCKETS_S, hi), len(BUCKETS_S) - 1)
    ]


def test_latency_quantiles_within_the_measured_handshake_times(run: Run) -> None:
    rtts = [v["rtt"] for v in run.verdicts if v["result"] == "success"]
    elapsed = [a["elapsed"] for a in run.attempts if a["result"] == "connected"]
    assert len(rtts) == 5 and len(elapsed) == 5
    lo, hi = _bucket_bounds(min(rtts + elapsed), max(rtts + elapsed))
    for q in (0.5, 0.9, 0.99):
        direct = run.prom.scalar(
            f"histogram_quantile({q}, sum by (le) "
            '(rate(tcpeek_handshake_duration_seconds_bucket{filter="TX"}[5m])))'
        )
        assert lo <= direct <= hi, (q, direct, rtts, elapsed)
        name = f"filter:tcpeek_handshake_duration_seconds:p{round(q * 100)}_5m"
        assert run.prom.scalar(f'{name}{{filter="TX"}}') == pytest.approx(direct)
    count = run.prom.scalar('tcpeek_handshake_duration_seconds_count{filter="TX"}')
    total = run.prom.scalar('tcpeek_handshake_duration_seconds_sum{filter="TX"}')
    assert count == 5 and total == pytest.approx(sum(rtts), abs=1e-5)


def test_recording_rules_evaluate(run: Run) -> None:
    # rules run each second on the samples so far: wait for one over the last verdicts
    run.prom.wait_for('count(filter:tcpeek_handshake_failures:ratio_rate5m{filter="TX"} '
                      '> 0.58 < 0.59)', 1)  # fmt: skip
    health = run.prom.rule_health()
    assert len(health) == 11 and set(health.values()) == {"ok"}, health
    ratio = run.prom.scalar('filter:tcpeek_handshake_failures:ratio_rate5m{filter="TX"}')
    assert ratio == pytest.approx(7 / 12, rel=1e-3)
    by_result = run.prom.values('filter_result:tcpeek_handshakes:ratio_rate5m{filter="TX"}')
    assert {dict(k)["result"]: round(v, 3) for k, v in by_result.items()} == {
        "success": round(5 / 12, 3), "reject": 0.25, "timeout": round(2 / 12, 3),
        "unreach": round(2 / 12, 3),
    }  # fmt: skip
    syn = run.prom.scalar('filter:tcpeek_syn_retransmissions:ratio_rate5m{filter="TX"}')
    retrans = run.prom.scalar('tcpeek_syn_retransmissions_total{filter="TX"}')
    assert syn == pytest.approx(retrans / 12, rel=1e-3)


def test_miruo_session_counts(run: Run) -> None:
    prom = run.prom
    # served ones close with FIN both ways, refused ones with the server's RST
    prom.wait_for('miruo_sessions_total{close="fin"}', 5)
    assert prom.scalar('miruo_sessions_total{close="rst"}') == 3
    assert prom.scalar('miruo_rst_total{during_close="false"}') == 3
    # the dropped and ICMP-rejected SYNs stay half-open (miruo does not read ICMP)
    half_open = prom.scalar("miruo_active_sessions") + prom.scalar(
        'miruo_sessions_total{close="timeout"}'
    )
    assert half_open == 4
    assert prom.scalar("miruo_handshake_rtt_seconds_count") == 5
    assert prom.scalar('miruo_sessions_shown_total{reason="rst"}') == 3
    assert prom.scalar("sum(miruo_capture_dropped_total)") == 0
    assert prom.scalar("miruo_dropped_sessions_total") == 0


def dashboard_expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    return exprs


def test_every_dashboard_expression_parses_and_returns_data(run: Run) -> None:
    """Grafana's variables become what "All" selects; $__rate_interval a minute."""
    for expr in dashboard_expressions():
        concrete = (
            expr.replace("$instance", ".*").replace("$filter", ".*")
            .replace("$__rate_interval", "1m")
        )  # fmt: skip
        assert "$" not in concrete, expr
        assert run.prom.query(concrete), f"no data: {concrete}"
    doc = json.loads(DASHBOARD.read_text())
    for var in doc["templating"]["list"]:
        if var["type"] == "query":  # label_values(SELECTOR, LABEL): the series API
            text = var["query"]["query"]
            selector, label = text[len("label_values(") : -1].rsplit(", ", 1)
            series = run.prom.api("series", **{"match[]": selector.replace("$instance", ".*")})
            assert {s[label] for s in series}, text


# --- hostile scrapers and the cost of /metrics, under the load test's traffic ---------

LOAD_RATE, LOAD_SECONDS, LOAD_BUFFER_MB = 2000, 5, 8  # as test_tcpeek_live's load test
SCRAPERS = Path(__file__).with_name("scrapers.py")


def load(lab: Lab, tmp_path: Path, scrapers: str | None) -> dict[str, Any]:
    from tests.live.load_tcpeek import run_load

    metrics = ("--metrics", f"127.0.0.1:{TCPEEK_PORT}") if scrapers else ()
    side = (sys.executable, str(SCRAPERS), str(TCPEEK_PORT), scrapers, str(LOAD_SECONDS + 1))
    numbers = run_load(lab, LOAD_RATE, LOAD_SECONDS, tmp_path, buffer_mb=LOAD_BUFFER_MB,
                       tcpeek_args=metrics, alongside=side if scrapers else ())  # fmt: skip
    said = json.dumps(numbers)
    total = LOAD_RATE * LOAD_SECONDS
    assert numbers["tcpeek_exit"] == 0 and numbers["connected"] == total, said
    assert numbers["pcap"]["drop"] == 0 and numbers["pcap"]["ifdrop"] == 0, said
    assert numbers["json_success"] == total and numbers["port_mismatches"] == 0, said
    assert numbers["summary_tx"]["success"] == total, said
    return numbers


def test_hostile_scrapers_delay_no_capture(lab: Lab, tmp_path: Path) -> None:
    """A client that never sends, one that never reads, 100 scraping back to back:
    nothing dropped, every handshake counted and judged within a second of its ACK."""
    numbers = load(lab, tmp_path, "hostile")
    said = json.dumps(numbers)
    print("hostile scrapers:", said)
    assert numbers["alongside"]["scrapes"] > 100, said  # they really were served
    assert numbers["verdict_lag_max_s"] < 1.0, said


def test_cost_of_metrics_scraped_every_second(lab: Lab, tmp_path: Path) -> None:
    """The same load without /metrics and with it scraped each second (the figures
    are printed: docs/fleet.md quotes them)."""
    plain = load(lab, tmp_path, None)
    with Lab() as second:  # a fresh pair of namespaces: the first's load server holds its port
        served = load(second, tmp_path, "steady")
    assert served["alongside"]["scrapes"] >= LOAD_SECONDS and not served["alongside"]["errors"]
    figures = {k: (plain[k], served[k]) for k in ("tcpeek_cpu_s", "tcpeek_rss_kb",
               "verdict_lag_max_s", "achieved_rate")}  # fmt: skip
    figures["pcap_drop"] = (plain["pcap"]["drop"], served["pcap"]["drop"])
    print("metrics cost (without, with):", json.dumps(figures))
    # generous: the endpoint may cost some CPU, not a multiple of the capture's
    assert served["tcpeek_cpu_s"] <= 1.5 * plain["tcpeek_cpu_s"] + 0.5, figures


def test_metrics_keep_serving_after_the_drop_to_nobody(lab: Lab, tmp_path: Path) -> None:
    """What tcpeek@.service relies on: the port is bound as root, before `-u`; after
    the drop the endpoint still answers, with the counts."""
    import pwd

    from tests.live.test_tcpeek_live import start_tcpeek
    from tests.support.scrape import get, samples, value

    lab.start_server([OPEN], mode="hold")
    tcpeek = start_tcpeek(
        lab, lab.client_ns, "-i", lab.client_if, "-u", "nobody", "-U", tmp_path / "s.sock",
        "--json", "--metrics", "127.0.0.1:80",  # a privileged port: only root may bind it
    )  # fmt: skip
    uid_line = next(line for line in Path(f"/proc/{tcpeek.pid}/status").read_text().splitlines()
                    if line.startswith("Uid:"))  # fmt: skip
    assert uid_line.split()[1:] == [str(pwd.getpwnam("nobody").pw_uid)] * 4
    attempts = finish_attempts(start_attempts(lab, [job(lab.server4, OPEN)]))
    key = (lab.client4, attempts[0]["local_port"])
    tcpeek.wait_verdicts({key}, timeout=10)
    time.sleep(0.5)  # the next publish
    with lab.inside(lab.client_ns):
        got = samples(get("http://127.0.0.1:80/metrics")[1])
    assert value(got, "tcpeek_handshakes_total", filter="TX", direction="TX",
                 result="success") == 1  # fmt: skip
    assert tcpeek.interrupt() == 0, tcpeek.stderr
