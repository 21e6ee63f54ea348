-- Retries: a job is made of attempts. A failed attempt that its retry policy retries puts
-- the job back in the queue (`pending`) with the instant the next attempt is due; the claim
-- query skips it until then. The attempts before the current one are kept with the job, as
-- a JSON array of {attempt, reason, status, started_at, finished_at, result}; the current
-- attempt's number is one more than their count.
ALTER TABLE scraper_jobs
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN attempts        JSONB   NOT NULL DEFAULT '[]';

-- A scraper's own retry policy (NULL: the server's default).
ALTER TABLE scrapers ADD COLUMN retry JSONB;
