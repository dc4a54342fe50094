//! A table read as one type: its name, the columns its rows are read from and the function that
//! reads them, named once for every query that selects them.

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

/// Rows of `name` read as `T`: `read` takes `columns` in their order.
pub(crate) struct Table<T> {
    pub name: &'static str,
    pub columns: &'static str,
    pub read: fn(&Row) -> T,
}

impl<T> Table<T> {
    /// `SELECT columns FROM name`, then `rest` (its `WHERE`, `ORDER BY`, `LIMIT`).
    fn select(&self, rest: &str) -> String {
        format!("SELECT {} FROM {} {rest}", self.columns, self.name)
    }

    /// The rows `rest` selects.
    pub async fn rows(
        &self,
        client: &impl GenericClient,
        rest: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>, tokio_postgres::Error> {
        super::read_rows(client, &self.select(rest), params, self.read).await
    }

    /// The row `rest` selects, if any.
    pub async fn row(
        &self,
        client: &impl GenericClient,
        rest: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, tokio_postgres::Error> {
        super::read_opt(client, &self.select(rest), params, self.read).await
    }
}
