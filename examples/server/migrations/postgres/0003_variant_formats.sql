-- The same as the SQLite migration 0006: a variant may be stored in several formats
-- (IMGEST_OUTPUT_FORMATS), so the key becomes (image, name, format).
ALTER TABLE variants DROP CONSTRAINT variants_pkey;
ALTER TABLE variants ADD PRIMARY KEY (image_id, name, format);
