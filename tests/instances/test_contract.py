"""One contract, two registries: ``FileRegistry`` and ``RedisRegistry`` (a real redis-server,
skipped without one) pass the same tests. What only one of them does is in ``test_files.py`` and
``test_redis.py``."""

from __future__ import annotations

import time
from typing import Any

from conftest import wait_until
from mcp_embed.instances import Instance, new_instance


def _instance(app: str = "maya", **changes: Any) -> Instance:
    instance = new_instance(
        server_name="tests", app_name=app, url="http://127.0.0.1:1/mcp", version="9.9", metadata={"n": 1}
    )
    return Instance.from_json({**instance.to_json(), **changes})


def test_a_registered_instance_is_listed_whole_and_unlisted(make_registry: Any) -> None:
    registry = make_registry()
    instance = _instance(metadata={"scene": "shot_010.ma", "nested": {"frames": [1, 2]}, "ok": None})
    registry.register(instance)
    assert registry.list() == [instance]
    assert registry.list()[0].metadata == {"scene": "shot_010.ma", "nested": {"frames": [1, 2]}, "ok": None}
    registry.unregister(instance.id)
    assert registry.list() == []
    registry.unregister(instance.id)  # gone already: a no-op


def test_another_reader_sees_what_one_wrote(make_registry: Any) -> None:
    writer, reader = make_registry(), make_registry()
    instance = _instance()
    writer.register(instance)
    assert [i.id for i in reader.list()] == [instance.id]


def test_register_replaces_the_record_with_the_same_id(make_registry: Any) -> None:
    registry = make_registry()
    instance = _instance()
    registry.register(instance)
    later = Instance.from_json({**instance.to_json(), "metadata": {"scene": "b.ma"}}).beat(time.time() + 1)
    registry.register(later)
    assert registry.list() == [later]


def test_oldest_first(make_registry: Any) -> None:
    registry = make_registry()
    now = time.time()
    young = _instance("blender", started_at=now - 1)
    old = _instance("maya", started_at=now - 100)
    middle = _instance("maya", started_at=now - 50)
    for instance in (young, old, middle):
        registry.register(instance)
    assert [i.id for i in registry.list()] == [old.id, middle.id, young.id]


def test_an_instance_whose_heartbeat_stops_is_no_longer_listed(make_registry: Any) -> None:
    registry = make_registry(ttl=0.5)
    beating, silent = _instance("maya"), _instance("blender")
    registry.register(beating)
    registry.register(silent)

    def only_the_beating_one() -> bool:
        registry.register(beating.beat(time.time()))  # the heartbeat of one of them
        return [i.id for i in registry.list()] == [beating.id]

    assert wait_until(only_the_beating_one, 15.0)


def test_close_keeps_the_records(make_registry: Any) -> None:
    first = make_registry()
    instance = _instance()
    first.register(instance)
    first.close()
    assert [i.id for i in make_registry().list()] == [instance.id]


def test_an_empty_registry_lists_nothing(make_registry: Any) -> None:
    assert make_registry().list() == []
