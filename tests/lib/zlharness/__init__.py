"""zlharness: the one Python harness of zeroloss's tests, chaos run, demo
and benchmarks. Services, private anvils, cast, psql, kcat, free ports,
waits, worker processes (started in their own session, stopped by pid), an
isolated stage pipeline per test, and the whole local pipeline.

Import it with one line from wherever the caller lives:

    sys.path.insert(0, str(REPO / "tests" / "lib"))   # then: from zlharness.pg import psql

(tests/integration/conftest.py does that for pytest.) Modules:

  env       REPO, need_env, HarnessError, bin_path, write_secret
  procs     free_port, run, spawn, stop, wait_until, ProcessGroup (workers +
            their logs, sanitizer check)
  services  deploy/local/services: run it, read its env
  pg        psql, migrate, create/drop a database, dsn_for
  kafka     kcat, produce, consume, headers, create_topics (zl-topics)
  chain     cast, Anvil (a private one, HOME in its folder), deploy_contracts,
            rpc_batch
  jsonrpc   a kept-alive batched JSON-RPC client (deposit senders)
  web       http_get, http_json
  stage     test deposits and rows, stage_env, StagePipeline (one stage on
            its own topic prefix), new_stage_pipeline
  pipeline  LocalPipeline: every service and stage on this machine (demo, chaos)
  rpc_fault_proxy, tcp_proxy
            TEST CODE fakes: a JSON-RPC proxy that misbehaves on demand, a
            TCP forwarder that can be taken down (verify tests, chaos)
"""
