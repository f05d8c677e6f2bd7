"""Test helpers for code that uses audit-core: a loopback OpenRouter, respx helpers, a clock.

```python
from audit_core.testing import FakeOpenRouter

async with FakeOpenRouter(latency_ms=20, fault_rate=0.1) as server:
    async with AsyncLLMClient("test-key", base_url=server.url) as llm:
        ...
    server.stats.max_in_flight
```
"""

from audit_core._logging import capture_logs
from audit_core.testing._clock import FakeClock
from audit_core.testing._openrouter import (
    FakeOpenRouter,
    ServerStats,
    chat_completion_body,
    mock_chat_completion,
)

__all__ = [
    "FakeClock",
    "FakeOpenRouter",
    "ServerStats",
    "capture_logs",
    "chat_completion_body",
    "mock_chat_completion",
]
