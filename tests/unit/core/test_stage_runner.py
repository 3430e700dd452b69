"""The stage runner's error policy, on plain values (no broker needed for the per-record part;
the runner on a real broker is exercised by tests/e2e/test_poison.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, StrictStr, ValidationError

from schemas.dead_letter import DeadLetter
from services.core.config.errors import ConfigError
from services.core.config.settings import Settings
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.stage_runner import (
    BUDGET,
    ERROR,
    INVALID,
    Inputs,
    Item,
    Out,
    Outcome,
    Reject,
    Stage,
    StageRunner,
    describe,
    is_infra,
)
from services.core.ops.metrics import ServiceMetrics


@dataclass
class Msg:
    value: bytes
    offset: int
    topic: str = "t.in"
    partition: int = 0
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class Doc(BaseModel):
    name: StrictStr


class Echo(Stage):
    """Echoes each name; raises on "boom", sleeps on "slow", rejects "no"."""

    name = "echo"
    inputs = Inputs(("t.in",), "g")

    def __init__(self) -> None:
        self.seen: list[str] = []

    def decode(self, msg: Any) -> Doc:
        return Doc.model_validate_json(msg.value)

    def handle(self, items: list[Item]) -> Iterator[Outcome]:
        for item in items:
            name = item.value.name
            if name == "boom":
                raise KeyError("secret-person-name")
            if name == "slow":
                time.sleep(0.05)
            if name == "no":
                yield Reject("refused: field name is no", pointer="/name")
                continue
            self.seen.append(name)
            yield [Out("t.out", name.encode())]


def runner(stage: Stage, budget: float = 1.0) -> StageRunner:
    return StageRunner(Settings(stage_record_budget_s=budget), stage, ServiceMetrics("test"),
                       service="test")


def outcomes(r: StageRunner, values: list[bytes]) -> list[tuple[int, Outcome]]:
    stage = r.stage
    items = [Item(Msg(v, i), stage.decode(Msg(v, i))) for i, v in enumerate(values)]
    got = asyncio.run(r._outcomes(items))
    return [(item.msg.offset, out) for item, out in got]


def doc(name: str) -> bytes:
    return json.dumps({"name": name}).encode()


class TestErrorPolicy:
    def test_given_a_raising_record_then_it_alone_is_rejected_and_the_rest_go_on(self) -> None:
        stage = Echo()
        got = outcomes(runner(stage), [doc("a"), doc("boom"), doc("b"), doc("boom"), doc("c")])
        assert stage.seen == ["a", "b", "c"]
        kinds = [o.kind if isinstance(o, Reject) else "ok" for _, o in got]
        assert kinds == ["ok", ERROR, "ok", ERROR, "ok"]
        assert [off for off, _ in got] == [0, 1, 2, 3, 4]

    def test_given_an_exception_then_the_reason_names_type_and_place_not_its_text(self) -> None:
        got = outcomes(runner(Echo()), [doc("boom")])
        reason = got[0][1].reason  # type: ignore[union-attr]
        assert reason.startswith("KeyError at test_stage_runner.py:")
        assert "secret-person-name" not in reason

    def test_given_a_record_over_its_work_budget_then_it_is_dead_lettered(self) -> None:
        stage = Echo()
        got = outcomes(runner(stage, budget=0.01), [doc("a"), doc("slow"), doc("b")])
        assert isinstance(got[1][1], Reject)
        assert got[1][1].kind == BUDGET
        assert not isinstance(got[0][1], Reject)
        assert not isinstance(got[2][1], Reject)

    def test_given_a_handler_reject_then_it_keeps_its_reason_and_pointer(self) -> None:
        got = outcomes(runner(Echo()), [doc("no")])
        assert got[0][1] == Reject("refused: field name is no", pointer="/name")

    def test_given_a_broker_failure_in_the_handler_then_it_is_raised_not_dead_lettered(
            self) -> None:
        class Down(Echo):
            def handle(self, items: list[Item]) -> Iterator[Outcome]:
                raise BrokerUnavailable("down")
                yield []

        # A broker failure must stop progress, not be skipped as a bad record.
        with pytest.raises(BrokerUnavailable, match="down"):
            outcomes(runner(Down()), [doc("a")])


class TestEventLoop:
    def test_given_a_long_batch_then_other_tasks_run_between_its_records(self) -> None:
        """A batch's pure work gives the loop back between records (YIELD_EVERY_S), so the
        producer's sender, the fetcher and a service's other stages are not held for the whole
        batch; each record's work budget still starts after the pause."""
        from services.core.kafka.stage_runner import YIELD_EVERY_S

        class Busy(Echo):
            def handle(self, items: list[Item]) -> Iterator[Outcome]:
                for item in items:
                    time.sleep(YIELD_EVERY_S)  # work longer than the yield interval
                    yield [Out("t.out", item.value.name.encode())]

        async def go() -> tuple[int, list[tuple[Item, Outcome]]]:
            ticks = 0
            done = asyncio.Event()

            async def other() -> None:
                nonlocal ticks
                while not done.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(other())
            await asyncio.sleep(0)
            before = ticks
            stage = Busy()
            items = [Item(Msg(doc(str(i)), i), stage.decode(Msg(doc(str(i)), i)))
                     for i in range(6)]
            got = await runner(stage, budget=1.0)._outcomes(items)
            during = ticks - before
            done.set()
            await task
            return during, got

        during, got = asyncio.run(go())
        assert during >= 3  # the other task ran while the batch was being handled
        assert not any(isinstance(o, Reject) for _, o in got)
        assert [i.msg.offset for i, _ in got] == list(range(6))


class TestDeadLetters:
    def test_a_letter_names_stage_topic_partition_offset_and_reason_and_validates(self) -> None:
        r = runner(Echo())
        out = r._dead_letter(Msg(b"x", 7, topic="s115.raw.police", partition=2),
                             Reject("bad", kind=INVALID))
        letter = DeadLetter.model_validate_json(out.value or b"")
        assert (letter.stage, letter.topic, letter.partition, letter.offset) == (
            "echo", "s115.raw.police", 2, 7)
        assert letter.reason_kind == INVALID
        assert letter.problems[0].reason == "bad"
        assert out.key == b"echo/s115.raw.police/2/7"  # a re-read writes the same letter key

    def test_describe_keeps_field_and_rule_but_never_the_input_value(self) -> None:
        try:
            Doc.model_validate({"name": ["Jane Doe 07700 900123"]})
        except ValidationError as exc:
            text = describe(exc)
        assert text.startswith("name: Input should be a valid string")
        assert "Jane" not in text
        assert describe(ConfigError("county: bad")) == "ConfigError: county: bad"

    def test_only_broker_errors_count_as_infrastructure(self) -> None:
        from aiokafka.errors import KafkaConnectionError

        assert is_infra(KafkaConnectionError())
        assert is_infra(BrokerUnavailable("x"))
        assert not is_infra(ValueError("x"))
        assert not is_infra(KeyError("x"))


class TestStopping:
    def test_given_a_stage_task_that_ends_first_then_stop_is_set_and_the_service_stops(
            self) -> None:
        """The config follower stopping makes the service exit (not carry on, stale)."""
        from services.core.kafka.stage_runner import StageStopped, run_until_first_stops

        async def go() -> tuple[bool, str]:
            stop = asyncio.Event()

            async def follower() -> None:
                return None  # ended on its own

            async def stage() -> None:
                await stop.wait()

            tasks = {"config": asyncio.create_task(follower()),
                     "stage": asyncio.create_task(stage())}
            try:
                await run_until_first_stops(stop, tasks)
            except StageStopped as exc:
                return stop.is_set(), str(exc)
            return stop.is_set(), ""

        stopped, why = asyncio.run(go())
        assert stopped
        assert "config" in why

    def test_given_stop_then_the_stages_wind_down_without_error(self) -> None:
        from services.core.kafka.stage_runner import run_until_first_stops

        async def go() -> asyncio.Task[None]:
            stop = asyncio.Event()

            async def stage() -> None:
                await stop.wait()

            tasks = {"stage": asyncio.create_task(stage())}
            asyncio.get_running_loop().call_later(0.01, stop.set)
            await run_until_first_stops(stop, tasks)  # raises if a stage stopped with an error
            return tasks["stage"]

        task = asyncio.run(go())
        assert task.done()
        assert not task.cancelled()
        assert task.exception() is None
