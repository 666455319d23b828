-- Morax metadata schema, version 3 (PostgreSQL): a catalog version.
--
-- Every node polls the store to learn of topics created, deleted, grown or
-- reconfigured through other nodes. Reading every topic on every poll makes
-- an idle node's cost grow with the number of topics; reading one counter
-- does not. The counter moves with any change to the topics table, by a
-- trigger, so no write path (present or future) can forget to bump it. It
-- is one row: topic changes serialize on it, which is fine for how rarely
-- (and rate-limited) topics change.

CREATE TABLE catalog_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER topics_bump_catalog_version
    AFTER INSERT OR UPDATE OR DELETE ON topics
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
