//! The `database` skill: read-only SQL on the PostgreSQL database the operator names in
//! `GATHERING_SKILL_DATABASE_URL` (never GatheRing's own database unless the operator says
//! so), and schema inspection.
//!
//! Why a query cannot write: each call opens its own connection, starts a `READ ONLY`
//! transaction and sets a `statement_timeout` (a query, so the transaction can no longer be
//! switched to read-write), then runs the agent's SQL as ONE prepared statement (the extended
//! protocol refuses `COMMIT; DELETE …` as several commands), fetches at most `limit + 1` rows
//! through a portal, and rolls back. The operator should still give the DSN a role that can
//! only read: a read-only transaction does not stop functions with side effects outside the
//! database the role may call.
//!
//! Values are decoded by column type ([`Cell`]) into JSON: booleans, integers, floats, numeric
//! (as a decimal string, exact), text, JSON, dates and times, UUIDs, bytea (hex), arrays; any
//! other type as its text form when it is UTF-8.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use gathering_db::tokio_postgres::types::{FromSql, Kind, Type};
use gathering_db::tokio_postgres::{self, NoTls};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::registry::{Registry, ToolOutput};

const SKILL: &str = "database";
const MAX_ROWS: i32 = 1000;
const DEFAULT_ROWS: i32 = 100;
const MAX_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const MAX_SQL_BYTES: usize = 100 * 1024;
/// Largest JSON of the rows one call returns; rows past it are left out (`truncated`).
const MAX_RESULT_BYTES: usize = 2 * 1024 * 1024;

fn def(name: &str, description: &str) -> ToolDefinition {
    ToolDefinition::new(name, SKILL, Category::Database, description)
        .permissions(&[Permission::Read])
        .timeout(Duration::from_secs(40))
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    reg.register(
        def("db_query", "Run one read-only SQL query (SELECT, WITH, VALUES, SHOW, EXPLAIN) on the operator-configured database: read-only transaction, statement timeout, row limit")
            .schema(json!({
                "type": "object",
                "properties": {
                    "sql": {"type": "string", "minLength": 1, "maxLength": MAX_SQL_BYTES},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
                    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": MAX_TIMEOUT_MS},
                },
                "required": ["sql"],
                "additionalProperties": false,
            }))
            .output("{columns[{name, type}], rows[{column: value}], row_count, truncated, duration_ms}"),
        with(svc.clone(), db_query),
    )?;
    reg.register(
        def("db_schema", "Tables and views of the operator-configured database (schema, name, kind, estimated rows)")
            .schema(json!({
                "type": "object",
                "properties": {"schema": {"type": "string", "minLength": 1, "maxLength": 63}},
                "additionalProperties": false,
            }))
            .output("{tables[{schema, name, kind, estimated_rows}]}"),
        with(svc.clone(), db_schema),
    )?;
    reg.register(
        def("db_describe", "Columns, primary key and indexes of one table of the operator-configured database")
            .schema(json!({
                "type": "object",
                "properties": {
                    "table": {"type": "string", "minLength": 1, "maxLength": 63},
                    "schema": {"type": "string", "minLength": 1, "maxLength": 63},
                },
                "required": ["table"],
                "additionalProperties": false,
            }))
            .output("{schema, table, columns[{name, type, nullable, default}], primary_key[], indexes[{name, definition}]}"),
        with(svc.clone(), db_describe),
    )?;
    Ok(())
}

/// A read-only session on the configured database.
async fn session(svc: &Services, timeout_ms: u64) -> Result<tokio_postgres::Client, ToolError> {
    let dsn = svc.config.database_url.as_ref().ok_or_else(|| {
        ToolError::InvalidInput(
            "no database is configured for the database skill (the operator sets GATHERING_SKILL_DATABASE_URL)".into(),
        )
    })?;
    let mut config: tokio_postgres::Config = dsn.expose().parse().map_err(|_| {
        ToolError::Failed("GATHERING_SKILL_DATABASE_URL does not parse as a PostgreSQL DSN".into())
    })?;
    // Every transaction of this session is read-only unless it says otherwise, and every
    // statement has the call's time limit (startup options, not SQL).
    let options = format!("-c default_transaction_read_only=on -c statement_timeout={timeout_ms}");
    config
        .application_name("gathering-database-skill")
        .connect_timeout(Duration::from_secs(5))
        .options(&options);
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        ToolError::Failed(format!(
            "cannot connect to the database: {}",
            db_message(&e)
        ))
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e
            .source()
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

fn sql_error(e: tokio_postgres::Error) -> ToolError {
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        return ToolError::Failed(
            "the query ran past its statement timeout and was cancelled".into(),
        );
    }
    ToolError::Failed(format!("SQL error: {}", db_message(&e)))
}

#[derive(Deserialize)]
struct QueryInput {
    sql: String,
    limit: Option<i32>,
    timeout_ms: Option<u64>,
}

async fn db_query(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: QueryInput = parse(input)?;
    let limit = i.limit.unwrap_or(DEFAULT_ROWS).clamp(1, MAX_ROWS);
    let timeout = i
        .timeout_ms
        .unwrap_or(DEFAULT_TIMEOUT_MS)
        .min(MAX_TIMEOUT_MS);
    let started = std::time::Instant::now();
    let mut client = session(&svc, timeout).await?;
    let sql = i.sql.trim().trim_end_matches(';');
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(sql_error)?;
    // A query before the agent's: from here on the transaction cannot be made read-write.
    tx.query_one(
        "SELECT set_config('statement_timeout', $1, true)",
        &[&timeout.to_string()],
    )
    .await
    .map_err(sql_error)?;
    let stmt = tx.prepare(sql).await.map_err(sql_error)?;
    let columns: Vec<Value> = stmt
        .columns()
        .iter()
        .map(|c| json!({"name": c.name(), "type": c.type_().name()}))
        .collect();
    let portal = tx.bind(&stmt, &[]).await.map_err(sql_error)?;
    let rows = tx
        .query_portal(&portal, limit + 1)
        .await
        .map_err(sql_error)?;
    let mut truncated = rows.len() > limit as usize;
    let mut out = Vec::new();
    let mut size = 0usize;
    for row in rows.iter().take(limit as usize) {
        let mut obj = serde_json::Map::new();
        for (n, col) in row.columns().iter().enumerate() {
            let cell: Cell = row.try_get(n).map_err(sql_error)?;
            obj.insert(col.name().to_owned(), cell.0);
        }
        let value = Value::Object(obj);
        size += value.to_string().len();
        if size > MAX_RESULT_BYTES {
            truncated = true;
            break;
        }
        out.push(value);
    }
    drop(portal);
    tx.rollback().await.map_err(sql_error)?;
    let n = out.len();
    Ok(ToolOutput::ok(
        format!("{n} row(s){}", if truncated { " (truncated)" } else { "" }),
        json!({
            "columns": columns,
            "rows": out,
            "row_count": n,
            "truncated": truncated,
            "duration_ms": started.elapsed().as_millis() as u64,
        }),
    ))
}

#[derive(Deserialize)]
struct SchemaInput {
    schema: Option<String>,
}

async fn db_schema(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: SchemaInput = parse(input)?;
    let client = session(&svc, DEFAULT_TIMEOUT_MS).await?;
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, \
                    CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' \
                         WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
                         WHEN 'f' THEN 'foreign table' END, \
                    c.reltuples::bigint \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' \
               AND ($1::text IS NULL OR n.nspname = $1) \
               AND has_table_privilege(c.oid, 'SELECT') \
             ORDER BY 1, 2 LIMIT 2000",
            &[&i.schema],
        )
        .await
        .map_err(sql_error)?;
    let mut tables = Vec::with_capacity(rows.len());
    for r in &rows {
        let estimated: i64 = r.try_get(3).map_err(sql_error)?;
        tables.push(json!({
            "schema": r.try_get::<_, String>(0).map_err(sql_error)?,
            "name": r.try_get::<_, String>(1).map_err(sql_error)?,
            "kind": r.try_get::<_, String>(2).map_err(sql_error)?,
            // -1: never analysed.
            "estimated_rows": (estimated >= 0).then_some(estimated),
        }));
    }
    Ok(ToolOutput::ok(
        format!("{} table(s) and view(s)", tables.len()),
        json!({"tables": tables}),
    ))
}

#[derive(Deserialize)]
struct DescribeInput {
    table: String,
    schema: Option<String>,
}

async fn db_describe(
    svc: Arc<Services>,
    _ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: DescribeInput = parse(input)?;
    let schema = i.schema.unwrap_or_else(|| "public".into());
    let client = session(&svc, DEFAULT_TIMEOUT_MS).await?;
    let cols = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&schema, &i.table],
        )
        .await
        .map_err(sql_error)?;
    if cols.is_empty() {
        return Err(ToolError::Missing(format!(
            "no table or view {schema}.{} (or it has no columns)",
            i.table
        )));
    }
    let mut columns = Vec::with_capacity(cols.len());
    for r in &cols {
        columns.push(json!({
            "name": r.try_get::<_, String>(0).map_err(sql_error)?,
            "type": r.try_get::<_, String>(1).map_err(sql_error)?,
            "nullable": r.try_get::<_, bool>(2).map_err(sql_error)?,
            "default": r.try_get::<_, Option<String>>(3).map_err(sql_error)?,
        }));
    }
    let idx = client
        .query(
            "SELECT i.relname::text, pg_get_indexdef(x.indexrelid), x.indisprimary, \
                    ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n \
                          ORDER BY k.o) \
             FROM pg_catalog.pg_index x \
             JOIN pg_catalog.pg_class c ON c.oid = x.indrelid \
             JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 ORDER BY 1",
            &[&schema, &i.table],
        )
        .await
        .map_err(sql_error)?;
    let mut indexes = Vec::new();
    let mut primary_key: Vec<String> = Vec::new();
    for r in &idx {
        if r.try_get::<_, bool>(2).map_err(sql_error)? {
            primary_key = r.try_get(3).map_err(sql_error)?;
        }
        indexes.push(json!({
            "name": r.try_get::<_, String>(0).map_err(sql_error)?,
            "definition": r.try_get::<_, String>(1).map_err(sql_error)?,
        }));
    }
    Ok(ToolOutput::ok(
        format!("{schema}.{}: {} column(s)", i.table, columns.len()),
        json!({"schema": schema, "table": i.table, "columns": columns, "primary_key": primary_key, "indexes": indexes}),
    ))
}

/// One value of any column type, as JSON.
struct Cell(Value);

type DecodeError = Box<dyn StdError + Sync + Send>;

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, DecodeError> {
        let v = match *ty {
            Type::BOOL => json!(bool::from_sql(ty, raw)?),
            Type::INT2 => json!(i16::from_sql(ty, raw)?),
            Type::INT4 => json!(i32::from_sql(ty, raw)?),
            Type::INT8 => json!(i64::from_sql(ty, raw)?),
            Type::OID => json!(u32::from_sql(ty, raw)?),
            Type::FLOAT4 => float(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Value::String(numeric(raw)?),
            Type::JSON | Type::JSONB => Value::from_sql(ty, raw)?,
            Type::UUID => json!(uuid_text(raw)?),
            Type::TIMESTAMP => json!(chrono::NaiveDateTime::from_sql(ty, raw)?.to_string()),
            Type::TIMESTAMPTZ => {
                json!(chrono::DateTime::<chrono::Utc>::from_sql(ty, raw)?.to_rfc3339())
            }
            Type::DATE => json!(chrono::NaiveDate::from_sql(ty, raw)?.to_string()),
            Type::BYTEA => json!(raw.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            _ => match ty.kind() {
                Kind::Array(_) => Value::Array(
                    Vec::<Option<Cell>>::from_sql(ty, raw)?
                        .into_iter()
                        .map(|c| c.map_or(Value::Null, |c| c.0))
                        .collect(),
                ),
                // Text, varchar, name, enums and most other types send their text form.
                _ => match std::str::from_utf8(raw) {
                    Ok(s) => Value::String(s.to_owned()),
                    Err(_) => Value::String(format!("<{} value, {} bytes>", ty.name(), raw.len())),
                },
            },
        };
        Ok(Cell(v))
    }

    fn from_sql_null(_: &Type) -> Result<Self, DecodeError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

fn uuid_text(raw: &[u8]) -> Result<String, DecodeError> {
    if raw.len() != 16 {
        return Err("uuid is not 16 bytes".into());
    }
    let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// PostgreSQL's binary numeric: ndigits, weight (of the first base-10000 digit), sign, display
/// scale, then the base-10000 digits.
fn numeric(raw: &[u8]) -> Result<String, DecodeError> {
    let word = |i: usize| -> Result<u16, DecodeError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "numeric too short".into())
    };
    let (ndigits, weight, sign, dscale) = (
        word(0)? as usize,
        word(1)? as i16,
        word(2)?,
        word(3)? as usize,
    );
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<_, _>>()?;
    let digit = |pos: i32| -> u16 {
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut int_part = String::new();
    for w in (0..=i32::from(weight)).rev() {
        let d = digit(i32::from(weight) - w);
        if int_part.is_empty() {
            if d != 0 {
                int_part = d.to_string();
            }
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut pos = i32::from(weight) + 1;
    while frac.len() < dscale {
        frac.push_str(&format!("{:04}", digit(pos)));
        pos += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if dscale > 0 {
        format!("{sign}{int_part}.{frac}")
    } else {
        format!("{sign}{int_part}")
    })
}
