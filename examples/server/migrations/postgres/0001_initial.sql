-- The same schema as the SQLite migrations 0001-0004, in PostgreSQL's types (times are
-- milliseconds since the Unix epoch, so BIGINT).

-- Images: one row per accepted upload.
CREATE TABLE images (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    filename        TEXT,
    format          TEXT NOT NULL,
    bytes           BIGINT NOT NULL,
    original_key    TEXT NOT NULL,
    original_sha256 TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    result_json     TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX images_user_created ON images (user_id, created_at DESC);

-- Variants of a processed image, stored under content-addressed keys.
CREATE TABLE variants (
    image_id     TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    storage_key  TEXT NOT NULL,
    width        BIGINT NOT NULL,
    height       BIGINT NOT NULL,
    format       TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    position     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX variants_key ON variants (storage_key);

-- The job queue: persisted, leased to a worker while it runs.
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    image_id      TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    run_after     BIGINT NOT NULL,
    lease_until   BIGINT,
    lease_token   TEXT,
    error_code    TEXT,
    error_message TEXT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    processing_ms BIGINT,
    dispatched_at BIGINT,
    worker        TEXT
);
CREATE INDEX jobs_runnable ON jobs (status, run_after);
CREATE INDEX jobs_finished ON jobs (finished_at);
CREATE INDEX jobs_image ON jobs (image_id);

-- Who did what, when, from where, and how it ended.
CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    user_id   TEXT,
    action    TEXT NOT NULL,
    image_id  TEXT,
    client    TEXT,
    outcome   TEXT NOT NULL,
    detail    TEXT
);
CREATE INDEX audit_user_action_at ON audit_log (user_id, action, outcome, at);
CREATE INDEX audit_at ON audit_log (at);
