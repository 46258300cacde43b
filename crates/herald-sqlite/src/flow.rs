//! A webhook's own flow limits (`herald_store::FlowLimits`): the columns and
//! how they are read. The engine enforces them; the store only keeps them.

use herald_store::FlowLimits;
use rusqlite::Row;
use rusqlite::types::Type;

/// Migration: each webhook's own `max_in_flight` and `max_per_second`
/// (NULL: no limit of its own).
pub(crate) const MIGRATION: &str = r#"
ALTER TABLE webhooks ADD COLUMN max_in_flight INTEGER CHECK (max_in_flight > 0);
ALTER TABLE webhooks ADD COLUMN max_per_second INTEGER CHECK (max_per_second > 0);
"#;

/// How many columns [`limits_from_row`] reads (the last two of
/// `rows::WEBHOOK_COLUMNS`).
pub(crate) const COUNT: usize = 2;

pub(crate) fn limits_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<FlowLimits> {
    let limit = |i: usize| {
        row.get::<_, Option<i64>>(at + i)?
            .map(|v| {
                u32::try_from(v).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(at + i, Type::Integer, e.into())
                })
            })
            .transpose()
    };
    Ok(FlowLimits {
        max_in_flight: limit(0)?,
        max_per_second: limit(1)?,
    })
}
