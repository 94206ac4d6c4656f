-- An image's job is looked up on every image read, and by the cascade when an image is deleted.
CREATE INDEX jobs_image ON jobs (image_id);
