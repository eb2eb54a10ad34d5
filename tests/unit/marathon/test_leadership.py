"""Leadership without ZooKeeper: who leads among member znodes, and the embedded node's
terms (abdication starts a fresh term from the store, close ends the last one)."""
from __future__ import annotations

import asyncio

from marathon.leadership import Node, leader_of
from tests.helpers import wait_for_async


async def serving(node: Node, timeout: float = 5.0) -> object:
    """The node's service once a term serves (polling: terms start in the background)."""
    return await wait_for_async(lambda: node.service, timeout, what="a term serving")


def test_leader_is_the_lowest_sequence_number():
    assert leader_of(["member_0000000010", "member_0000000002", "member_0000000007"]) \
        == "member_0000000002"
    assert leader_of(["member_0000000100", "member_0000000099"]) == "member_0000000099"
    assert leader_of(["other", "member_x", "lock"]) is None
    assert leader_of([]) is None


def test_embedded_node_abdication_starts_a_new_term_and_close_ends_it():
    async def scenario() -> list[str]:
        seen: list[str] = []

        async def term(node: Node) -> None:
            seen.append(f"start {node.terms}")
            node.service = f"svc{node.terms}"
            try:
                await node.ended.wait()
            finally:
                seen.append(f"end {node.terms}")

        node = Node("127.0.0.1:8080", term)
        assert node.leader == "127.0.0.1:8080"
        run = asyncio.create_task(node.run())
        assert await serving(node) == "svc1"
        node.abdicate()
        assert node.service is None  # stops serving from the old term's state at once
        assert await serving(node) == "svc2"
        node.close()
        await asyncio.wait_for(run, 5)
        assert node.service is None and not node.leading
        return seen

    assert asyncio.run(scenario()) == ["start 1", "end 1", "start 2", "end 2"]


def test_a_failing_term_is_retried():
    async def scenario() -> int:
        async def term(node: Node) -> None:
            if node.terms == 1:
                raise RuntimeError("store unreadable")
            node.service = "ok"
            await node.ended.wait()

        node = Node("h:1", term)
        run = asyncio.create_task(node.run())
        svc = await serving(node, 10)  # the first term failed; it was retried
        node.close()
        await asyncio.wait_for(run, 5)
        assert svc == "ok"
        return node.terms

    assert asyncio.run(scenario()) == 2
