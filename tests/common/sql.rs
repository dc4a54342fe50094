//! The values tests read back from a test's database.

use tokio_postgres::types::{FromSqlOwned, ToSql};
use tokio_postgres::Row;

use super::TestEnv;

/// The values the tests read back: the one row a query returns, one of its values (a count, a
/// sum), or the first column of every row.
pub trait SqlValues {
    /// The one row `sql` returns.
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Row;

    async fn column<T: FromSqlOwned>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<T>;

    /// The first value of the one row `sql` returns.
    async fn scalar<T: FromSqlOwned>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> T {
        self.row(sql, params).await.get(0)
    }

    /// The one value of `sql`, a query that takes no parameters.
    async fn value_of<T: FromSqlOwned>(&self, sql: &str) -> T {
        self.scalar(sql, &[]).await
    }
}

impl SqlValues for tokio_postgres::Client {
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Row {
        self.query_one(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn column<T: FromSqlOwned>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<T> {
        let rows = self
            .query(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter().map(|r| r.get(0)).collect()
    }
}

/// A read on the environment's database over a connection of its own, for a test that reads
/// once.
impl SqlValues for TestEnv {
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Row {
        self.pg().await.row(sql, params).await
    }

    async fn column<T: FromSqlOwned>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<T> {
        self.pg().await.column(sql, params).await
    }
}
