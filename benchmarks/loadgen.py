"""A small keep-alive HTTP/1.1 load generator on asyncio (no third-party client overhead).

Shared by the benchmark scripts; loopback targets only.
"""

from __future__ import annotations

import asyncio
import statistics
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
