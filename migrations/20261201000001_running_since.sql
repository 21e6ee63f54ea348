-- When a claimed job's handler started. A worker claims jobs ahead of its free slots, so a
-- started job may still be waiting in its worker: if that worker is lost, a job whose handler
-- never started goes back to the queue, and only a job that really ran ends `dead`.
ALTER TABLE scraper_jobs ADD COLUMN running_since TIMESTAMPTZ;

-- Jobs started before this column existed may have run: count them as running.
UPDATE scraper_jobs SET running_since = started_at WHERE status = 'started';
