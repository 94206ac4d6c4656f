-- The MIME type a variant was stored with (served as its Content-Type).
ALTER TABLE variants ADD COLUMN content_type TEXT NOT NULL DEFAULT 'application/octet-stream';
