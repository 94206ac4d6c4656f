-- The same as the SQLite migration 0005.

-- The request that created a job (its X-Request-Id), shown in the job and on its log lines.
ALTER TABLE jobs ADD COLUMN request_id TEXT;

-- Idempotency-Key on uploads: the first answer to a (user, key), replayed for 24 hours.
CREATE TABLE idempotency_keys (
    user_id     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- sha256 of the uploaded file's name and bytes: the same key with another file is refused.
    fingerprint TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
