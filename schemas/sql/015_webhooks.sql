-- 015: signed webhooks on every credit (issue 21, workers/notify,
-- common/webhook_outbox.c, common/admin_webhooks.c).
--
-- An outbox: the notify stage inserts one delivery per active subscriber
-- per credited deposit inside the runtime's transaction; its sender
-- threads send each subscriber's pending deliveries in order and record
-- the outcome here. Kafka is not the retry queue (docs/architecture.md,
-- "Notify"): a subscriber down for hours pauses only its own rows.

CREATE TABLE IF NOT EXISTS webhook_subscribers (
    subscriber_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url text NOT NULL CHECK (url ~ '^https?://'),
    -- The sender must sign, so the secrets are stored as they are; never
    -- logged, never returned by a listing.
    secret text NOT NULL CHECK (length(secret) >= 16),
    -- After a rotation the previous secret stays valid (a second v1=)
    -- until retired by command or until secret_old_expires_at.
    secret_old text,
    secret_old_expires_at timestamptz,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- the sender's backoff: failures in a row, and when to try again
    failures integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error text
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    delivery_id uuid PRIMARY KEY,
    -- the order a subscriber's deliveries are sent in (insert order)
    seq bigserial NOT NULL,
    subscriber_id uuid NOT NULL REFERENCES webhook_subscribers (subscriber_id),
    deposit_id text NOT NULL,
    user_id text NOT NULL,
    -- fixed at insert: every attempt signs and sends the same bytes
    body text NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- when it was (re-)armed: the sender gives up ZL_NOTIFY_GIVE_UP_MS
    -- after this (zlctl webhook redeliver re-arms a failed delivery)
    armed_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    delivered_at timestamptz,
    last_status integer,
    last_error text,
    UNIQUE (subscriber_id, deposit_id)
);

CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (subscriber_id, seq)
    WHERE state = 'pending';

-- A delivery's id is name-based (RFC 4122 version 3, MD5) on the
-- subscriber and the deposit, so a redelivered credit computes the same id
-- and the UNIQUE key makes no second delivery. A receiver can recompute it:
-- Python's uuid.uuid3(UUID('5b0d7e3c-5a8f-4f3e-9c1a-2d6f0e4b7a91'),
-- '<subscriber_id>:<deposit_id>').
CREATE OR REPLACE FUNCTION webhook_delivery_id(subscriber uuid, deposit text) RETURNS uuid
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (substr(h, 1, 12) || '3' || substr(h, 14, 3)
            || to_hex((('x' || substr(h, 17, 1))::bit(4)::int & 3) | 8) || substr(h, 18, 15))::uuid
    FROM (SELECT md5(decode('5b0d7e3c5a8f4f3e9c1a2d6f0e4b7a91', 'hex')
                     || convert_to(subscriber::text || ':' || deposit, 'UTF8')) AS h) x
$$;

-- Roles, as 009: cluster-wide, created once whichever database comes first.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zl_notify') THEN
        BEGIN
            CREATE ROLE zl_notify NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by another database's migration
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO zl_notify', current_schema());
END $$;

-- notify (workers/notify, common/webhook_outbox.c): reads the credited row
-- (the runtime reads the whole row; an observer changes none of it),
-- inserts deliveries, sends them and records the outcome and its backoff.
GRANT SELECT ON deposits TO zl_notify;
GRANT SELECT ON webhook_subscribers TO zl_notify;
GRANT UPDATE (failures, next_attempt_at, last_error, updated_at) ON webhook_subscribers TO zl_notify;
GRANT SELECT, INSERT ON webhook_deliveries TO zl_notify;
GRANT UPDATE (state, attempts, last_attempt_at, delivered_at, last_status, last_error) ON webhook_deliveries
    TO zl_notify;
GRANT USAGE ON SEQUENCE webhook_deliveries_seq_seq TO zl_notify;

-- zl-admin (common/admin_webhooks.c): manages subscribers and their
-- secrets; lists deliveries and re-arms one (zlctl webhook redeliver).
GRANT SELECT, INSERT, UPDATE ON webhook_subscribers TO zl_admin;
GRANT SELECT ON webhook_deliveries TO zl_admin;
GRANT UPDATE (state, attempts, armed_at, last_error) ON webhook_deliveries TO zl_admin;
