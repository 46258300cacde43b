-- Custom event types producers register (built-in types are code, not rows).
-- The schema and example stay the text they came as: `jsonb` would reorder
-- fields, and the catalogue keeps the example's field order.
CREATE TABLE event_types (
    key          text PRIMARY KEY,
    description  text NOT NULL,
    family       text NOT NULL,
    schema_json  text NOT NULL,
    example_json text NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL
);
