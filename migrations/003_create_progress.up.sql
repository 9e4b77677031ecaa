-- progress: learning progress per user and topic (data model, "Table: progress").
-- user_id is NOT NULL as the data model's table says; the research note's SQL omits it, and the
-- data model wins.
CREATE TABLE progress (
    id             SERIAL,
    user_id        INTEGER      NOT NULL,
    topic          VARCHAR(255) NOT NULL,
    mastery_score  INTEGER      DEFAULT 0,
    last_practiced TIMESTAMP,
    streak_days    INTEGER      DEFAULT 0,
    CONSTRAINT progress_pkey PRIMARY KEY (id),
    CONSTRAINT progress_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT progress_user_id_topic_key UNIQUE (user_id, topic),
    CONSTRAINT progress_mastery_score_check CHECK (mastery_score BETWEEN 0 AND 100),
    -- A count of consecutive days cannot be negative.
    CONSTRAINT progress_streak_days_check CHECK (streak_days >= 0)
);

-- idx_progress_user_id duplicates the leading column of the UNIQUE (user_id, topic) index; it is
-- listed by the data model and created as listed.
CREATE INDEX idx_progress_user_id ON progress (user_id);
CREATE INDEX idx_progress_topic ON progress (topic);
CREATE INDEX idx_progress_mastery ON progress (mastery_score);
