-- Scrapers, their jobs (the queue) and the scheduler lease.

CREATE TABLE scrapers (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT     NOT NULL,
    schedule          TEXT     NOT NULL,
    schedule_crontab  TEXT,
    handler           TEXT     NOT NULL,
    config            JSONB    NOT NULL DEFAULT '{}',
    schedule_priority SMALLINT NOT NULL DEFAULT 2 CHECK (schedule_priority BETWEEN 0 AND 2),
    state             TEXT,
    timeout_seconds   BIGINT   CHECK (timeout_seconds > 0),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Jobs keep a snapshot of their scraper as it was at enqueue time, and outlive it: deleting
-- a scraper leaves its history readable.
CREATE TABLE scraper_jobs (
    id             BIGSERIAL PRIMARY KEY,
    scraper_id     BIGINT   NOT NULL,
    scraper        JSONB    NOT NULL,
    status         TEXT     NOT NULL CHECK (status IN ('pending', 'started', 'failed', 'succeeded', 'dead', 'killed')),
    priority       SMALLINT NOT NULL CHECK (priority BETWEEN 0 AND 2),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at     TIMESTAMPTZ,
    last_active_at TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    result         TEXT,
    -- The schedule fire time that created this job; NULL for manual runs.
    scheduled_for  TIMESTAMPTZ
);

-- At most one pending or started job per scraper: concurrent enqueues cannot both win.
CREATE UNIQUE INDEX scraper_jobs_one_active_per_scraper
    ON scraper_jobs (scraper_id) WHERE status IN ('pending', 'started');

-- A schedule fire produces at most one job, whichever replica (or stale leader) fires it.
CREATE UNIQUE INDEX scraper_jobs_one_per_fire
    ON scraper_jobs (scraper_id, scheduled_for) WHERE scheduled_for IS NOT NULL;

-- The claim query's order: priority, then FIFO.
CREATE INDEX scraper_jobs_pending_queue ON scraper_jobs (priority, id) WHERE status = 'pending';

-- Dead-job detection scans started jobs only.
CREATE INDEX scraper_jobs_started ON scraper_jobs (last_active_at) WHERE status = 'started';

-- A scraper's jobs, newest first.
CREATE INDEX scraper_jobs_by_scraper ON scraper_jobs (scraper_id, id DESC);

-- Who holds which lease, for people and metrics. The lease itself is an advisory lock held
-- on the holder's dedicated connection; this row only mirrors it.
CREATE TABLE leases (
    name           TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    acquired       TIMESTAMPTZ NOT NULL,
    acquired_until TIMESTAMPTZ NOT NULL
);

-- Each job's log, written by the worker running it, read live by the UI and the API.
-- Pruned together with its job.
CREATE TABLE scraper_job_logs (
    job_id  BIGINT  NOT NULL REFERENCES scraper_jobs (id) ON DELETE CASCADE,
    line_no BIGINT  NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    level   TEXT    NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (job_id, line_no)
);
