//! Tables kept per caller (rate buckets, fair-share lanes, windows), bounded in size: a caller
//! that arrives while the table is full, once its idle entries are swept, shares one entry
//! with every other such caller instead of growing it.

use std::collections::HashMap;

/// The entry shared by callers that arrive while a table is full.
pub const OVERFLOW: &str = "(overflow)";

/// The key `who`'s state is kept under in `table`: its own when it has one or the table holds
/// fewer than `sweep_at` entries; else `sweep` runs first (it drops idle entries, or nothing
/// when it runs too often), and [`OVERFLOW`] is the key once `max` entries remain.
pub fn key_for<'a, V>(
    table: &mut HashMap<String, V>,
    who: &'a str,
    sweep_at: usize,
    max: usize,
    sweep: impl FnOnce(&mut HashMap<String, V>),
) -> &'a str {
    if table.contains_key(who) || table.len() < sweep_at {
        return who;
    }
    sweep(table);
    if table.len() >= max {
        OVERFLOW
    } else {
        who
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_sweeps_then_shares_one_entry() {
        let mut table: HashMap<String, u32> = (0..3).map(|i| (i.to_string(), i)).collect();
        assert_eq!(key_for(&mut table, "1", 3, 3, |_| unreachable!()), "1");
        assert_eq!(key_for(&mut table, "new", 3, 3, |_| {}), OVERFLOW);
        let swept = key_for(&mut table, "new", 3, 3, |t| t.retain(|_, v| *v > 0));
        assert_eq!((swept, table.len()), ("new", 2));
        // Swept early, shared only at the bound.
        assert_eq!(key_for(&mut table, "other", 2, 3, |_| {}), "other");
    }
}
