//! Database rows as the contract's JSON. The catalogue routes return raw rows (contract §2.4):
//! every column by its name, timestamps in `isoformat()` form (`+00:00`), dates as
//! `YYYY-MM-DD`, arrays as lists, NULL as `null`. Converting by column type keeps each query the
//! single place that says which columns a response has. `numeric` and enum columns are cast in
//! SQL (`::float8`, `::text`), so an unexpected type is a bug, reported as a 500.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use gathering_db::tokio_postgres::Row;
use gathering_db::tokio_postgres::types::Type;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A timestamp as Python's `datetime.isoformat()` writes it (`2025-01-02T03:04:05.123456+00:00`):
/// what the contract's raw rows carry.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// A timestamp as Pydantic models serialise it (`…Z`): what the contract's typed responses
/// (`Agent`, `MemoryResponse`) carry.
pub fn iso_z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn get<'a, T>(row: &'a Row, i: usize) -> Result<Option<T>, ApiError>
where
    T: gathering_db::tokio_postgres::types::FromSql<'a>,
{
    row.try_get::<_, Option<T>>(i).map_err(ApiError::internal)
}

fn column(row: &Row, i: usize) -> Result<Value, ApiError> {
    let ty = row.columns()[i].type_();
    let v = match *ty {
        Type::BOOL => get::<bool>(row, i)?.map(Value::from),
        Type::INT2 => get::<i16>(row, i)?.map(Value::from),
        Type::INT4 => get::<i32>(row, i)?.map(Value::from),
        Type::INT8 => get::<i64>(row, i)?.map(Value::from),
        Type::FLOAT4 => get::<f32>(row, i)?.map(|f| Value::from(f64::from(f))),
        Type::FLOAT8 => get::<f64>(row, i)?.map(Value::from),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            get::<String>(row, i)?.map(Value::from)
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
            get::<Vec<Option<String>>>(row, i)?.map(Value::from)
        }
        Type::INT8_ARRAY => get::<Vec<Option<i64>>>(row, i)?.map(Value::from),
        Type::TIMESTAMPTZ => get::<DateTime<Utc>>(row, i)?.map(|t| Value::from(iso(t))),
        Type::DATE => get::<NaiveDate>(row, i)?.map(|d| Value::from(d.to_string())),
        Type::JSON | Type::JSONB => get::<Value>(row, i)?,
        _ => {
            return Err(ApiError::Internal(format!(
                "column {} has unsupported type {ty}",
                row.columns()[i].name()
            )));
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

/// Every column of `row`, by name.
pub fn to_json(row: &Row) -> Result<Value, ApiError> {
    let mut out = Map::with_capacity(row.len());
    for (i, c) in row.columns().iter().enumerate() {
        out.insert(c.name().to_owned(), column(row, i)?);
    }
    Ok(Value::Object(out))
}

/// Every row, each by [`to_json`].
pub fn all_to_json(rows: &[Row]) -> Result<Vec<Value>, ApiError> {
    rows.iter().map(to_json).collect()
}
