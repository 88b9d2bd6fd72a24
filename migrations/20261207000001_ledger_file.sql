-- The quota ledger moved to a file of its own, `<mirror path>.quota`
-- (see src/mirror/ledger.rs): a request start no longer waits for the
-- mirror's writer. Its rows were copied there when the mirror was opened,
-- just before this migration.
DROP TABLE IF EXISTS request_ledger;
