"""The FastAPI start-up example in clients/python/README.md runs as written."""

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

from schedules.models import Service, TaskSchedule

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text()
    return re.search(r"<!-- README example: .*? -->\n```python\n(.*?)```", text, re.S).group(1)


def test_readme_startup_example_registers_the_service_and_its_three_schedules(base_url, api_key, monkeypatch):
    """Two start-ups: the first registers web-app with three schedules, the second changes nothing."""
    monkeypatch.setenv("LUFFY_ADMIN_URL", base_url)
    monkeypatch.setenv("LUFFY_ADMIN_KEY", api_key)
    namespace = {}
    exec(compile(_example(), str(README), "exec"), namespace)
    app = SimpleNamespace(state=SimpleNamespace())

    async def start_up():
        async with namespace["lifespan"](app):
            return dict(app.state.schedules)

    first = asyncio.run(start_up())
    second = asyncio.run(start_up())

    assert Service.objects.get().name == "Web application"
    assert sorted(first) == ["index", "logs", "rca"]
    assert {key: schedule.description for key, schedule in first.items()} == {
        "logs": "Every 15 minutes",
        "rca": "Every hour",
        "index": "Every day",
    }
    assert {key: schedule.id for key, schedule in second.items()} == {key: s.id for key, s in first.items()}
    assert TaskSchedule.objects.count() == 3
