-- Rate-limit windows shared by all replicas (engine::scraper::middleware::PostgresRateLimitStore).
-- One row per host and limit, holding the times of the requests counted in the current
-- sliding window; the row lock serialises the check-and-count of concurrent requests.
CREATE TABLE rate_limit_buckets (
    key  TEXT PRIMARY KEY,
    hits TIMESTAMPTZ[] NOT NULL DEFAULT '{}'
);
