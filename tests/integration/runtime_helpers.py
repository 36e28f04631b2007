"""Helpers for driving stage workers against the real broker and database.

The harness (tests/lib/zlharness) holds them; this module keeps the names
the runtime tests and the other stages' helpers import. Each test gets its
own topic prefix and consumer group, so tests never see each other's
messages, and its own random deposit ids, so rows never collide.
"""
from zlharness.env import REPO, need_env  # noqa: F401
from zlharness.chain import CHAIN_ID  # noqa: F401
from zlharness.kafka import kcat  # noqa: F401
from zlharness.pg import psql  # noqa: F401
from zlharness.procs import wait_until  # noqa: F401
from zlharness.stage import StagePipeline as Pipeline  # noqa: F401
from zlharness.stage import effects, insert_rows, new_deposit, states  # noqa: F401
