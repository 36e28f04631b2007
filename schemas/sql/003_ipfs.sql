-- 003: what the ipfs-upload stage remembers besides the deposits row.
--
-- NFT images are uploaded once and reused by every deposit's metadata: this
-- table says which image CIDs are already pinned (to ZL_IPFS_PIN_K of the
-- configured providers), so a restart does not upload them again. The CID is
-- computed locally from the file's bytes (CIDv1, raw, sha2-256, base32): a
-- changed image file is a new row, an unchanged one is found again. The
-- provider list is part of the key, so a new provider list (say Pinata added)
-- gets the image uploaded once more: its metadata must not point at an image
-- only an old provider holds.
CREATE TABLE ipfs_images (
    cid        text        NOT NULL CHECK (cid ~ '^bafkrei[a-z2-7]{52}$'),
    providers  text        NOT NULL,      -- ZL_IPFS_PROVIDERS as configured (URLs, never secrets)
    tier       text        NOT NULL,      -- 'default' or the tier's minimum amount
    bytes      integer     NOT NULL CHECK (bytes BETWEEN 0 AND 262144),
    source     text        NOT NULL,      -- the file it was read from, for operators
    pinned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cid, providers)
);
