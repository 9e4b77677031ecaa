-- exercises: coding challenges and their test cases (data model, "Table: exercises").
-- Created before submissions, which references it (the research note's order has them the
-- other way round, which PostgreSQL rejects).
CREATE TABLE exercises (
    id          SERIAL,
    title       VARCHAR(255) NOT NULL,
    description TEXT,
    difficulty  VARCHAR(20),
    test_cases  JSONB,
    solution    TEXT,
    topic       VARCHAR(100),
    CONSTRAINT exercises_pkey PRIMARY KEY (id),
    CONSTRAINT exercises_difficulty_check CHECK (difficulty IN ('beginner', 'intermediate', 'advanced'))
);

CREATE INDEX idx_exercises_topic ON exercises (topic);
CREATE INDEX idx_exercises_difficulty ON exercises (difficulty);
