"""The RPC fault proxy now lives in the harness (tests/lib/zlharness); this
name stays importable for the tests."""
from zlharness.rpc_fault_proxy import FaultProxy  # noqa: F401
