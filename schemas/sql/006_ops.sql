-- 006: operations: the replay log, the sweeper's bookkeeping, sweep
-- requests from the admin API, the admin audit log and Idempotency-Key
-- answers. Applied by zl-migrate (never by hand), in one transaction.
-- References only 001's tables.

-- One row per dead letter zl-replay has taken, keyed by its DLQ coordinates,
-- so a replay that crashes midway and is run again sends nothing twice:
--   'claimed': the row was moved out of dead in the same transaction; the
--              message is to be (re)published;
--   'sent':    its delivery to the original topic was confirmed.
CREATE TABLE replay_log (
    dlq_topic       text        NOT NULL,
    dlq_partition   integer     NOT NULL,
    dlq_offset      bigint      NOT NULL,
    deposit_id      text,       -- the message key; not a foreign key: poison may name no row
    target_topic    text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('claimed', 'sent')),
    replay_count    integer     NOT NULL,  -- zl-dlq-replay-count sent (old + 1)
    restored_state  text,       -- the state the row was moved back to (NULL: row not moved)
    sent_partition  integer,
    sent_offset     bigint,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
CREATE INDEX replay_log_deposit ON replay_log (deposit_id);

-- The sweeper's memory of what it re-published, so a stuck row is swept once
-- per threshold rather than every pass, without touching deposits.updated_at
-- (which must keep saying when the row last moved: the alerts read it).
CREATE TABLE sweep_marks (
    deposit_id  text        PRIMARY KEY REFERENCES deposits (deposit_id) ON DELETE CASCADE,
    state       text        NOT NULL,   -- the state whose event was re-published
    swept_at    timestamptz NOT NULL DEFAULT now(),
    sweeps      integer     NOT NULL DEFAULT 1
);

-- "Sweep now" requests (POST /admin/sweep): the active sweeper takes them
-- on its next tick, so only the advisory-lock holder ever sweeps.
CREATE TABLE sweep_requests (
    id            bigserial   PRIMARY KEY,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    requested_by  text        NOT NULL,
    stale_ms      bigint      NOT NULL CHECK (stale_ms >= 0),
    deposit_id    text,       -- only this deposit (a requeue); NULL: every stale row
    started_at    timestamptz,
    done_at       timestamptz,
    published     integer,
    error         text
);
CREATE INDEX sweep_requests_open ON sweep_requests (id) WHERE done_at IS NULL;

-- Dead rows an operator handled by hand (POST /admin/dead/{id}/resolve with
-- action "resolve"): the row stays 'dead' (001's states are the contract; a
-- resolved deposit was not processed by the pipeline), and the dead-letter
-- listing leaves it out. The DLQ coordinates say which dead letter was
-- resolved: if the deposit dies again later, it shows again.
CREATE TABLE dead_resolutions (
    deposit_id    text        NOT NULL REFERENCES deposits (deposit_id),
    dlq_topic     text        NOT NULL,
    dlq_partition integer     NOT NULL,
    dlq_offset    bigint      NOT NULL,
    resolved_at   timestamptz NOT NULL DEFAULT now(),
    actor         text        NOT NULL,
    reason        text        NOT NULL,
    PRIMARY KEY (deposit_id, dlq_topic, dlq_partition, dlq_offset)
);

-- Every mutating admin call, with who, why and what came of it.
CREATE TABLE admin_audit (
    id              bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text        NOT NULL,  -- token fingerprint (never the token)
    action          text        NOT NULL,  -- resolve, requeue, sweep, breaker_reset
    deposit_id      text,
    reason          text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    from_state      text,
    to_state        text,
    idempotency_key text,
    detail          jsonb
);
CREATE INDEX admin_audit_deposit ON admin_audit (deposit_id, id);

-- Answers to POSTs that carried an Idempotency-Key: the same key with the
-- same request gets the stored answer instead of a second effect.
CREATE TABLE admin_idempotency (
    key           text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 200),
    method        text        NOT NULL,
    path          text        NOT NULL,
    request_hash  text        NOT NULL,   -- sha256 of the body: a reused key with another body is refused
    status        integer     NOT NULL,
    body          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
