-- curriculum: Python modules and learning paths (data model, "Table: curriculum").
-- dependencies holds a JSON array of prerequisite curriculum ids, e.g. [1, 5, 12].
CREATE TABLE curriculum (
    id                SERIAL,
    module_name       VARCHAR(255) NOT NULL,
    topic_name        VARCHAR(255) NOT NULL,
    order_index       INTEGER,
    dependencies      JSONB,
    estimated_minutes INTEGER,
    CONSTRAINT curriculum_pkey PRIMARY KEY (id),
    -- A learning time cannot be negative.
    CONSTRAINT curriculum_estimated_minutes_check CHECK (estimated_minutes >= 0)
);

CREATE INDEX idx_curriculum_module ON curriculum (module_name);
CREATE INDEX idx_curriculum_order ON curriculum (order_index);
