"""Helpers the client's tests share: one test body drives a sync or an async client."""

import asyncio
import inspect


async def settle(value):
    """A sync client's answer as is, an async client's awaited; iterators of either collected."""
    if inspect.isawaitable(value):
        return await value
    if hasattr(value, "__aiter__"):
        return [item async for item in value]
    if inspect.isgenerator(value):
        return list(value)
    return value


def run(scenario):
    """Run ``scenario`` (a coroutine function) to its end; sync and async tests share one body."""
    return asyncio.run(scenario())
