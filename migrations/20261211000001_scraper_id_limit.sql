-- Ids the server assigns stay at most 2^53 - 1, the largest integer JSON numbers hold
-- exactly in a browser, as ids clients may choose do. Once a client has chosen the largest,
-- assigning fails with SQLSTATE 2200H, which the server reports as a clear error. A database
-- whose sequence is already past the limit keeps its sequence as it is.
DO $$
BEGIN
    IF (SELECT last_value FROM scrapers_id_seq) <= 9007199254740991 THEN
        ALTER SEQUENCE scrapers_id_seq MAXVALUE 9007199254740991;
    END IF;
END $$;
