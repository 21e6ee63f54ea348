-- Sign-in sessions of the UI (server/src/sessions.rs), shared by all replicas: any replica
-- recognises a session, and signing out ends it everywhere. Ids are stored as their SHA-256,
-- the API token a session was opened with as a digest too: a new token ends old sessions.
CREATE TABLE ui_sessions (
    id_digest    TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ui_sessions_last_seen_at ON ui_sessions (last_seen_at);
