//! What differs between Postgres and SQLite in our DDL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Type names and expressions for one database.
pub(crate) struct Dialect {
    backend: DbBackend,
}

impl Dialect {
    pub(crate) fn of(manager: &SchemaManager<'_>) -> Result<Dialect, DbErr> {
        match manager.get_database_backend() {
            b @ (DbBackend::Postgres | DbBackend::Sqlite) => Ok(Dialect { backend: b }),
            other => Err(DbErr::Migration(format!("unsupported database {other:?}: use Postgres or SQLite"))),
        }
    }

    /// Expands the placeholders of a `CREATE TABLE`:
    /// `{ts}` a timestamp with time zone, `{now}` its default,
    /// `{bool}`, `{blob}`, and `{stamps}` (the two timestamp columns).
    pub(crate) fn ddl(&self, sql: &str) -> String {
        let (ts, now, boolean, blob) = match self.backend {
            DbBackend::Sqlite => ("TEXT", "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))", "BOOLEAN", "BLOB"),
            _ => ("TIMESTAMPTZ", "now()", "BOOLEAN", "BYTEA"),
        };
        let stamps = format!("created_at {ts} NOT NULL DEFAULT {now},\n    updated_at {ts} NOT NULL DEFAULT {now}");
        sql.replace("{stamps}", &stamps)
            .replace("{ts}", ts)
            .replace("{now}", now)
            .replace("{bool}", boolean)
            .replace("{blob}", blob)
    }

    /// Statements run once, before any table: the shared trigger function
    /// on Postgres.
    pub(crate) fn prelude(&self) -> Vec<String> {
        match self.backend {
            DbBackend::Sqlite => vec![],
            _ => vec![
                "CREATE OR REPLACE FUNCTION olin_set_updated_at() RETURNS trigger AS $$ \
                 BEGIN NEW.updated_at = now(); RETURN NEW; END; $$ LANGUAGE plpgsql"
                    .to_owned(),
            ],
        }
    }

    /// The trigger that keeps `table.updated_at` current.
    ///
    /// Postgres: `BEFORE UPDATE` calling the shared function. SQLite cannot
    /// assign to `NEW` in a trigger, so its form is `AFTER UPDATE` setting
    /// the column on the same row, unless the update set it itself (which
    /// also ends the recursion; SQLite's recursive triggers are off anyway).
    pub(crate) fn updated_at_trigger(&self, table: &str) -> String {
        match self.backend {
            DbBackend::Sqlite => format!(
                "CREATE TRIGGER {table}_updated_at AFTER UPDATE ON {table} FOR EACH ROW \
                 WHEN NEW.updated_at IS OLD.updated_at BEGIN \
                 UPDATE {table} SET updated_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') WHERE rowid = NEW.rowid; END"
            ),
            _ => format!(
                "CREATE TRIGGER {table}_updated_at BEFORE UPDATE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION olin_set_updated_at()"
            ),
        }
    }

    /// Drops `table`'s trigger (with the table on SQLite).
    pub(crate) fn drop_table(&self, table: &str) -> String {
        match self.backend {
            DbBackend::Sqlite => format!("DROP TABLE IF EXISTS {table}"),
            _ => format!("DROP TABLE IF EXISTS {table} CASCADE"),
        }
    }

    /// Statements run once, after every table is gone.
    pub(crate) fn epilogue(&self) -> Vec<String> {
        match self.backend {
            DbBackend::Sqlite => vec![],
            _ => vec!["DROP FUNCTION IF EXISTS olin_set_updated_at()".to_owned()],
        }
    }
}
