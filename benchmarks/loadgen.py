"""A small keep-alive HTTP/1.1 load generator on asyncio (no third-party client overhead).

Shared by the benchmark scripts; loopback targets only.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.count,
            "errors": self.errors,
            "rps": self.count / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_ms": self.percentile(50),
            "p99_ms": self.percentile(99),
            "mean_ms": statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0,
        }


async def _client(host: str, port: int, paths: Callable[[int], str], headers: str,
                  deadline: float, max_requests: int, result: LoadResult, offset: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while time.perf_counter() < deadline and result.count + result.errors < max_requests:
            request = f"GET {paths(i)} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode()
            i += 1
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            elapsed = (time.perf_counter() - start) * 1000
            if status_line.split(b" ")[1:2] == [b"200"]:
                result.latencies_ms.append(elapsed)
            else:
                result.errors += 1
    finally:
        writer.close()


def run_load(host: str, port: int, paths: Callable[[int], str], *, headers: dict[str, str],
             clients: int, seconds: float, max_requests: int = 10**9) -> LoadResult:
    assert host in ("127.0.0.1", "localhost", "::1"), "load runs target loopback only"
    header_text = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    result = LoadResult()

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        await asyncio.gather(*(
            _client(host, port, paths, header_text, deadline, max_requests, result, n * 7)
            for n in range(clients)
        ))
        result.elapsed_s = time.perf_counter() - start

    asyncio.run(main())
    return result


WRK_SCRIPT = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(host: str, port: int, paths: list[str], *, headers: dict[str, str], clients: int,
            seconds: float) -> dict[str, float]:
    """The same measurement with wrk (a C load generator), so the client is not the limit."""
    assert host in ("127.0.0.1", "localhost", "::1"), "load runs target loopback only"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
    command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency",
               "-s", script.name]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, f"http://{host}:{port}{paths[0]}"], capture_output=True,
                         text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, flags=re.MULTILINE))
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"requests": requests_done, "errors": errors,
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": _ms(latency["50"]), "p99_ms": _ms(latency["99"])}
