-- 001: the state table every stage coordinates through, its history, and the
-- deposit addresses. Applied by zl-migrate (never by hand), in one transaction.

-- One row per deposit (docs/architecture.md §4). Amounts are numeric(78,0):
-- a uint256 in the token's smallest unit, never a double.
CREATE TABLE deposits (
    deposit_id        text PRIMARY KEY,
    chain_id          bigint      NOT NULL CHECK (chain_id > 0),
    tx_hash           text        NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    log_index         integer     NOT NULL CHECK (log_index >= 0),
    block_number      bigint      NOT NULL CHECK (block_number >= 0),
    block_hash        text        NOT NULL CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    token             text        NOT NULL,
    from_addr         text        NOT NULL,
    to_addr           text        NOT NULL,
    user_id           text        NOT NULL,
    amount            numeric(78,0) NOT NULL CHECK (amount >= 0),
    occurred_at       timestamptz NOT NULL,
    state             text        NOT NULL DEFAULT 'detected' CHECK (state IN
                        ('detected','verified','pinned','mint_submitted','minted','credited','reorged','dead')),
    -- per-stage results
    confirmations     integer,
    metadata_cid      text,
    token_uri         text,
    nft_contract      text,
    token_id          numeric(78,0),
    mint_tx_hash      text,
    credit_id         uuid,
    credit_eggs       numeric(78,0),
    -- failure bookkeeping
    attempts          integer     NOT NULL DEFAULT 0,
    last_error        text,
    last_error_class  text,
    next_attempt_at   timestamptz,
    dead_from_state   text,       -- the state the row was in when it was dead-lettered
    dlq_topic         text,
    dlq_partition     integer,
    dlq_offset        bigint,
    trace_id          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (deposit_id = chain_id::text || ':' || tx_hash || ':' || log_index::text)
);

-- The sweeper looks for rows that have not moved: by state and age.
CREATE INDEX deposits_state_updated ON deposits (state, updated_at);

-- Every state change, for the admin API's "full status and history" and for
-- audits. Written by a trigger so no code path can forget it.
CREATE TABLE deposit_history (
    id          bigserial PRIMARY KEY,
    deposit_id  text        NOT NULL REFERENCES deposits (deposit_id),
    from_state  text,
    to_state    text        NOT NULL,
    error_class text,
    error       text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deposit_history_deposit ON deposit_history (deposit_id, id);

CREATE FUNCTION deposits_history_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO deposit_history (deposit_id, from_state, to_state)
        VALUES (NEW.deposit_id, NULL, NEW.state);
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        INSERT INTO deposit_history (deposit_id, from_state, to_state, error_class, error)
        VALUES (NEW.deposit_id, OLD.state, NEW.state, NEW.last_error_class, NEW.last_error);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER deposits_history AFTER INSERT OR UPDATE OF state ON deposits
    FOR EACH ROW EXECUTE FUNCTION deposits_history_trg();

-- Deposit addresses and the users they belong to. Addresses are stored
-- lower-case so lookups from chain logs need no case folding.
CREATE TABLE deposit_addresses (
    chain_id   bigint NOT NULL,
    address    text   NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    user_id    text   NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, address)
);
