-- Morax metadata schema, version 3 (SQLite): a catalog version. See
-- pgmeta's 0003_catalog_version.sql for why. SQLite has only row-level
-- triggers; a statement that touches several topics bumps the version
-- several times, which only has to move, not count.

CREATE TABLE catalog_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

CREATE TRIGGER topics_insert_bump_catalog_version AFTER INSERT ON topics
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER topics_update_bump_catalog_version AFTER UPDATE ON topics
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER topics_delete_bump_catalog_version AFTER DELETE ON topics
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
END;
