-- The secrets key check: HMAC-SHA256(key, label) of the key the database's
-- sealed values are sealed with. The first node to start writes it; every
-- node compares its own at start and refuses to run with another key.
CREATE TABLE key_check (
    id          smallint PRIMARY KEY CHECK (id = 1),
    check_value bytea NOT NULL
);
