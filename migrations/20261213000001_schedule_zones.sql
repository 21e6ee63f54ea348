-- The IANA time zone a scraper's crontab and calendar schedules are read in (NULL: UTC), and
-- how its crontab is read (NULL: standard; 'apscheduler' as Sneakpeek 0.1.7 read it).
ALTER TABLE scrapers
    ADD COLUMN schedule_timezone        TEXT,
    ADD COLUMN schedule_crontab_dialect TEXT CHECK (schedule_crontab_dialect IN ('standard', 'apscheduler'));
