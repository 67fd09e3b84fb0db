"""A real Prometheus server for live tests: Debian's `prometheus`, installed by the test
run when missing, started in a lab namespace with a generated config (1 s scrapes,
the contrib rules loaded), a temporary storage dir, listening on 127.0.0.1; and its
HTTP API queried from inside that namespace.

    prom = Prometheus(lab, lab.client_ns, workdir, {"tcpeek": 9470}).start()
    prom.wait_up("tcpeek")
    value = prom.scalar('sum(tcpeek_handshakes_total{result="success"})')
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tests.support.debian import require_tool

if TYPE_CHECKING:
    from tests.support.netns import Lab

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "contrib" / "prometheus" / "tcpscope-rules.yml"
API_PORT = 9090


class Prometheus:
    def __init__(self, lab: Lab, ns: str, workdir: Path, targets: dict[str, int]) -> None:
        self.lab, self.ns, self.workdir, self.targets = lab, ns, workdir, targets
        self.proc: subprocess.Popen[str] | None = None
        self.log: IO[str] | None = None
        self.binary = require_tool("prometheus", "prometheus")

    def config(self) -> str:
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{port}']\n"
            for job, port in self.targets.items()
        )
        return (
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\nscrape_configs:\n{jobs}"
        )

    def start(self, timeout: float = 60.0) -> Prometheus:
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(self.config())
        (self.workdir / "data").mkdir(exist_ok=True)
        self.log = (self.workdir / "prometheus.log").open("w")
        self.proc = self.lab.popen(
            self.ns, self.binary, f"--config.file={cfg}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{API_PORT}", "--log.level=warn",
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log_text()}")
            try:
                if self._get("/-/ready").startswith("Prometheus"):
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready in {timeout} s: {self.log_text()}")

    def log_text(self) -> str:
        return (self.workdir / "prometheus.log").read_text()[-2000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.log is not None:
            self.log.close()

    def _get(self, path: str, timeout: float = 10.0) -> str:
        with self.lab.inside(self.ns):  # 127.0.0.1 of the lab namespace
            url = f"http://127.0.0.1:{API_PORT}{path}"
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                return str(answer.read().decode())

    def api(self, path: str, **params: str) -> Any:
        text = self._get(f"/api/v1/{path}?{urllib.parse.urlencode(params)}")
        doc = json.loads(text)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant vector: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return list(data["result"])

    def values(self, expr: str) -> dict[frozenset[tuple[str, str]], float]:
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in self.query(expr)}

    def scalar(self, expr: str) -> float:
        got = self.query(expr)
        assert len(got) == 1, (expr, got)
        return float(got[0]["value"][1])

    def wait_up(self, job: str, timeout: float = 30.0) -> None:
        self.wait_for(f'up{{job="{job}"}}', 1.0, timeout)

    def wait_for(self, expr: str, want: float, timeout: float = 30.0) -> float:
        """Poll until `expr` (one series) equals `want`; the last value otherwise."""
        deadline = time.monotonic() + timeout
        last = math.nan
        while time.monotonic() < deadline:
            got = self.query(expr)
            if len(got) == 1:
                last = float(got[0]["value"][1])
                if last == want:
                    return last
            time.sleep(0.5)
        raise AssertionError(f"{expr} = {last}, not {want}, after {timeout} s")

    def rule_health(self) -> dict[str, str]:
        groups = self.api("rules")["groups"]
        return {r["name"]: r["health"] for g in groups for r in g["rules"]}
