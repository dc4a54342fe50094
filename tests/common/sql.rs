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

/// The sessions of the test database other than the asking one that wait for a lock while
/// running a statement that holds `$1`.
const WAITING_ON_A_LOCK: &str = "SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
      AND strpos(query, $1) > 0";

impl TestEnv {
    /// A transaction holding every other session off the posts table until it ends: for a test
    /// that needs a request to wait in the database for as long as the test likes.
    pub async fn lock_posts(&self) -> tokio_postgres::Client {
        let lock = self.pg().await;
        lock.batch_execute("BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        lock
    }

    /// Whether, within a minute, a statement holding `marker` waits for a lock (one
    /// [`TestEnv::lock_posts`] holds).
    pub async fn a_statement_waits(&self, marker: &str) -> bool {
        let pg = self.pg().await;
        super::wait_until(std::time::Duration::from_secs(60), || async {
            pg.scalar::<i64>(WAITING_ON_A_LOCK, &[&marker]).await > 0
        })
        .await
    }
}
