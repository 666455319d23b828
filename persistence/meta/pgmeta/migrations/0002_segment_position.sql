-- Morax metadata schema, version 2 (PostgreSQL): packed objects.
--
-- A node now packs the flushes of many partitions into one object, so a
-- segment is a slice [object_pos, object_pos + size) of its object and
-- several segments share one object_key. What must stay unique is the
-- slice's start: two segments claiming the same bytes would be a broker
-- bug. The new constraint's index leads with object_key, so it also serves
-- the "is this object still referenced?" lookups of deletion and the
-- orphan sweep.
--
-- Existing segments each had an object of their own, starting at 0.

ALTER TABLE segments ADD COLUMN object_pos bigint NOT NULL DEFAULT 0
    CONSTRAINT segments_object_pos_check CHECK (object_pos >= 0);

ALTER TABLE segments DROP CONSTRAINT segments_object_key_key;

ALTER TABLE segments ADD CONSTRAINT segments_object_key_pos_key UNIQUE (object_key, object_pos);
