-- struggle_alerts: detected learning struggles for teacher notification
-- (data model, "Table: struggle_alerts").
-- user_id is NOT NULL as the data model's table says; the research note's SQL omits it, and the
-- data model wins.
CREATE TABLE struggle_alerts (
    id             SERIAL,
    user_id        INTEGER      NOT NULL,
    topic          VARCHAR(255) NOT NULL,
    error_pattern  TEXT,
    first_detected TIMESTAMP    DEFAULT NOW(),
    resolved_at    TIMESTAMP,
    notified       BOOLEAN      DEFAULT FALSE,
    CONSTRAINT struggle_alerts_pkey PRIMARY KEY (id),
    CONSTRAINT struggle_alerts_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX idx_struggle_user_id ON struggle_alerts (user_id);
CREATE INDEX idx_struggle_topic ON struggle_alerts (topic);
-- B-tree indexes include NULLs, so "still unresolved" (resolved_at IS NULL) can use it too.
CREATE INDEX idx_struggle_resolved ON struggle_alerts (resolved_at);
-- Partial: only the alerts a teacher has not been told about yet.
CREATE INDEX idx_struggle_notified ON struggle_alerts (notified) WHERE notified = FALSE;
