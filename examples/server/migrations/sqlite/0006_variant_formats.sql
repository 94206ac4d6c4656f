-- A variant may be stored in several formats (IMGEST_OUTPUT_FORMATS): the key becomes
-- (image, name, format). SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE variants_by_format (
    image_id     TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    storage_key  TEXT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    format       TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    position     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (image_id, name, format)
);
INSERT INTO variants_by_format
    (image_id, name, storage_key, width, height, format, bytes, sha256, content_type, position)
    SELECT image_id, name, storage_key, width, height, format, bytes, sha256, content_type, position
    FROM variants;
DROP TABLE variants;
ALTER TABLE variants_by_format RENAME TO variants;
CREATE INDEX variants_key ON variants (storage_key);
