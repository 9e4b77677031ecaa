-- submissions: code students submit for exercises (data model, "Table: submissions").
-- user_id and exercise_id are NOT NULL as the data model's table says; the research note's SQL
-- omits it, and the data model wins.
CREATE TABLE submissions (
    id           SERIAL,
    user_id      INTEGER   NOT NULL,
    exercise_id  INTEGER   NOT NULL,
    code         TEXT      NOT NULL,
    feedback     TEXT,
    score        INTEGER,
    submitted_at TIMESTAMP DEFAULT NOW(),
    CONSTRAINT submissions_pkey PRIMARY KEY (id),
    CONSTRAINT submissions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT submissions_exercise_id_fkey FOREIGN KEY (exercise_id) REFERENCES exercises (id) ON DELETE CASCADE,
    -- NULL until the submission is scored.
    CONSTRAINT submissions_score_check CHECK (score BETWEEN 0 AND 100)
);

CREATE INDEX idx_submissions_user_id ON submissions (user_id);
CREATE INDEX idx_submissions_exercise_id ON submissions (exercise_id);
CREATE INDEX idx_submissions_submitted_at ON submissions (submitted_at DESC);
