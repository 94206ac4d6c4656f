-- For several processes and PostgreSQL.
-- A variant's place in the pipeline's order (PostgreSQL has no rowid to order by).
ALTER TABLE variants ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
UPDATE variants SET position = rowid;
-- When a job was last sent to the Redis queue, so the sweeper re-sends only what may be lost.
ALTER TABLE jobs ADD COLUMN dispatched_at INTEGER;
-- Which worker (process) took the job last.
ALTER TABLE jobs ADD COLUMN worker TEXT;
