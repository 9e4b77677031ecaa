-- users: LearnFlow accounts (data model, "Table: users").
-- role stays nullable with DEFAULT 'student', as the data model lists it; a CHECK lets NULL pass.
CREATE TABLE users (
    id         SERIAL,
    username   VARCHAR(255) NOT NULL,
    email      VARCHAR(255) NOT NULL,
    role       VARCHAR(50)  DEFAULT 'student',
    created_at TIMESTAMP    DEFAULT NOW(),
    updated_at TIMESTAMP    DEFAULT NOW(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_role_check CHECK (role IN ('student', 'teacher', 'admin'))
);

-- The UNIQUE constraints above already index username and email; the data model still lists
-- these two indexes by name, so they are created as listed (redundant, and cheap to drop later
-- in a migration of their own).
CREATE INDEX idx_users_username ON users (username);
CREATE INDEX idx_users_email ON users (email);
CREATE INDEX idx_users_role ON users (role);
