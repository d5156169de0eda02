//! Result rows as JSON objects, the same shape from every dialect.
//!
//! Why: a module reads rows without knowing the driver (docs/DATABASES.md). Objects are
//! keyed by column name in column order (a repeated name keeps its first place and its last
//! value); integers, floats, booleans, strings and null map to JSON as they are; integers beyond
//! i64 and decimals become text so no digit is lost; bytes become base64; dates `YYYY-MM-DD`;
//! date-times `YYYY-MM-DDTHH:MM:SS[.f]` with `±HH:MM` only for zoned types; floats JSON cannot
//! hold (NaN, infinities) become text. A column type the host cannot convert is a
//! `BadStatement` naming the column, with the advice to cast it to text.
//!
//! How: each driver's column type says which Rust type to decode (sqlx's own decoders); only
//! text-like PostgreSQL types and UUIDs are read from their raw bytes, where the binary format is
//! the text itself, or 16 bytes.

use base64::Engine;
use serde_json::{Map, Number, Value};
use sqlx::mysql::{MySqlRow, MySqlValueRef};
use sqlx::postgres::{PgRow, PgTypeInfo, PgTypeKind};
use sqlx::sqlite::SqliteRow;
use sqlx::types::chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::types::BigDecimal;
use sqlx::{Column, Decode, Row, TypeInfo, ValueRef};

/// `YYYY-MM-DD`.
const DATE: &str = "%Y-%m-%d";
/// `HH:MM:SS[.f]`.
const TIME: &str = "%H:%M:%S%.f";
/// `YYYY-MM-DDTHH:MM:SS[.f]`.
const DATETIME: &str = "%Y-%m-%dT%H:%M:%S%.f";
/// `YYYY-MM-DDTHH:MM:SS[.f]±HH:MM`.
const ZONED: &str = "%Y-%m-%dT%H:%M:%S%.f%:z";

/// A float as JSON; NaN and the infinities as text.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

/// An f32 as JSON through its shortest text, so 1.1 stays 1.1 rather than 1.100000023841858.
fn float32(f: f32) -> Value {
    float(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
}

/// An unsigned integer as a number when it fits an i64, else as text.
fn unsigned(u: u64) -> Value {
    i64::try_from(u).map_or_else(|_| Value::String(u.to_string()), Value::from)
}

/// Bytes as base64.
fn bytes(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// A decimal as plain text, never in exponent notation.
fn decimal(d: &BigDecimal) -> Value {
    Value::String(d.to_plain_string())
}

/// Decodes column `i` of `row` as `T`, whatever type sqlx thinks the column has (the caller chose
/// `T` from the column's type); the error names the column.
fn get<'r, R, T>(row: &'r R, i: usize) -> Result<T, String>
where
    R: Row,
    T: Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    row.try_get_unchecked::<T, usize>(i)
        .map_err(|e| format!("column {:?}: {e}", row.columns()[i].name()))
}

/// The advice when a column's type has no JSON form.
fn unsupported(name: &str, ty: &str) -> String {
    format!(
        "column {name:?} has type {ty}, which the host cannot convert; cast it to text in the SQL"
    )
}

/// A PostgreSQL row.
pub fn postgres(row: &PgRow) -> Result<Map<String, Value>, String> {
    let mut out = Map::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row
            .try_get_raw(i)
            .map_err(|e| format!("column {:?}: {e}", column.name()))?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            postgres_value(row, i, column.type_info())?
        };
        out.insert(column.name().to_string(), value);
    }
    Ok(out)
}

/// Column `i` (not null) of a PostgreSQL row, whose type is `ty`.
fn postgres_value(row: &PgRow, i: usize, ty: &PgTypeInfo) -> Result<Value, String> {
    let raw_str = || -> Result<String, String> {
        row.try_get_raw(i)
            .and_then(|v| v.as_str().map(str::to_string).map_err(sqlx::Error::Decode))
            .map_err(|e| format!("column {:?}: {e}", row.columns()[i].name()))
    };
    let raw_bytes = || -> Result<Vec<u8>, String> {
        row.try_get_raw(i)
            .and_then(|v| {
                v.as_bytes()
                    .map(<[u8]>::to_vec)
                    .map_err(sqlx::Error::Decode)
            })
            .map_err(|e| format!("column {:?}: {e}", row.columns()[i].name()))
    };
    let Some(oid) = ty.oid().map(|o| o.0) else {
        return Err(unsupported(row.columns()[i].name(), ty.name()));
    };
    Ok(match oid {
        16 => Value::Bool(get::<_, bool>(row, i)?),
        18 => Value::from(get::<_, i8>(row, i)?),
        21 => Value::from(get::<_, i16>(row, i)?),
        23 => Value::from(get::<_, i32>(row, i)?),
        20 => Value::from(get::<_, i64>(row, i)?),
        26 => Value::from(get::<_, sqlx::postgres::types::Oid>(row, i)?.0),
        700 => float32(get::<_, f32>(row, i)?),
        701 => float(get::<_, f64>(row, i)?),
        1700 => match get::<_, BigDecimal>(row, i) {
            // sqlx drops the display scale (12.50 would read 12.5000): it is the header's 4th word.
            Ok(d) => match raw_bytes()?.get(6..8) {
                Some(&[hi, lo]) => decimal(&d.with_scale(i64::from(u16::from_be_bytes([hi, lo])))),
                _ => decimal(&d),
            },
            // NaN and the infinities have no BigDecimal; their text is what PostgreSQL prints.
            Err(e) => numeric_special(&raw_bytes()?).ok_or(e)?,
        },
        // text, varchar, bpchar, name, unknown, json, xml: the binary format is the text.
        25 | 1043 | 1042 | 19 | 705 | 114 | 142 => Value::String(raw_str()?),
        // jsonb: a version byte (1), then the text.
        3802 => {
            let b = raw_bytes()?;
            Value::String(String::from_utf8_lossy(b.get(1..).unwrap_or_default()).into_owned())
        }
        17 => bytes(&get::<_, Vec<u8>>(row, i)?),
        1082 => Value::String(get::<_, NaiveDate>(row, i)?.format(DATE).to_string()),
        1083 => Value::String(get::<_, NaiveTime>(row, i)?.format(TIME).to_string()),
        1114 => Value::String(
            get::<_, NaiveDateTime>(row, i)?
                .format(DATETIME)
                .to_string(),
        ),
        1184 => Value::String(get::<_, DateTime<Utc>>(row, i)?.format(ZONED).to_string()),
        1266 => {
            let t = get::<_, sqlx::postgres::types::PgTimeTz<NaiveTime, FixedOffset>>(row, i)?;
            Value::String(format!("{}{}", t.time.format(TIME), t.offset))
        }
        2950 => Value::String(uuid_text(&raw_bytes()?)),
        _ => match ty.kind() {
            PgTypeKind::Domain(base) => postgres_value(row, i, base)?,
            PgTypeKind::Enum(_) => Value::String(raw_str()?),
            // Extension text types (citext) are sent as their text.
            PgTypeKind::Simple if ty.name().eq_ignore_ascii_case("citext") => {
                Value::String(raw_str()?)
            }
            _ => return Err(unsupported(row.columns()[i].name(), ty.name())),
        },
    })
}

/// NaN, Infinity or -Infinity from a binary NUMERIC (its sign word), else `None`.
fn numeric_special(raw: &[u8]) -> Option<Value> {
    let sign = u16::from_be_bytes([*raw.get(4)?, *raw.get(5)?]);
    let text = match sign {
        0xC000 => "NaN",
        0xD000 => "Infinity",
        0xF000 => "-Infinity",
        _ => return None,
    };
    Some(Value::String(text.into()))
}

/// A UUID's 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn uuid_text(raw: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A MySQL or MariaDB row.
pub fn mysql(row: &MySqlRow) -> Result<Map<String, Value>, String> {
    let mut out = Map::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw: MySqlValueRef<'_> = row
            .try_get_raw(i)
            .map_err(|e| format!("column {:?}: {e}", column.name()))?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            mysql_value(row, i, column.type_info().name())?
        };
        out.insert(column.name().to_string(), value);
    }
    Ok(out)
}

/// Column `i` (not null) of a MySQL row, whose type sqlx names `ty`.
fn mysql_value(row: &MySqlRow, i: usize, ty: &str) -> Result<Value, String> {
    Ok(match ty {
        // TINYINT(1), which MySQL's BOOLEAN is; another value than 0 or 1 stays a number.
        "BOOLEAN" => match get::<_, i64>(row, i)? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            other => Value::from(other),
        },
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
            Value::from(get::<_, i64>(row, i)?)
        }
        t if t.ends_with(" UNSIGNED") => unsigned(get::<_, u64>(row, i)?),
        "FLOAT" => float32(get::<_, f32>(row, i)?),
        "DOUBLE" => float(get::<_, f64>(row, i)?),
        // The binary protocol sends decimals as their exact text.
        "DECIMAL" | "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT"
        | "ENUM" | "SET" | "JSON" => Value::String(get::<_, String>(row, i)?),
        // MySQL flags text with a binary collation (utf8mb4_bin, and MariaDB's JSON) as binary,
        // and sqlx does not expose the character set that would tell them apart: valid UTF-8
        // is text, anything else base64.
        "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            match String::from_utf8(get::<_, Vec<u8>>(row, i)?) {
                Ok(text) => Value::String(text),
                Err(e) => bytes(e.as_bytes()),
            }
        }
        "BIT" | "GEOMETRY" => bytes(&get::<_, Vec<u8>>(row, i)?),
        "DATE" => Value::String(get::<_, NaiveDate>(row, i)?.format(DATE).to_string()),
        "DATETIME" | "TIMESTAMP" => Value::String(
            get::<_, NaiveDateTime>(row, i)?
                .format(DATETIME)
                .to_string(),
        ),
        // MySQL's TIME is a duration (it may be negative or above 24 hours).
        "TIME" => match get::<_, NaiveTime>(row, i) {
            Ok(t) => Value::String(t.format(TIME).to_string()),
            Err(_) => Value::String(get::<_, sqlx::mysql::types::MySqlTime>(row, i)?.to_string()),
        },
        "NULL" => Value::Null,
        other => return Err(unsupported(row.columns()[i].name(), other)),
    })
}

/// A SQLite row: the value's own storage class decides, refined by the declared column type
/// (BOOLEAN → true/false; DATE, TIME, DATETIME text → the common date-time format).
pub fn sqlite(row: &SqliteRow) -> Result<Map<String, Value>, String> {
    let mut out = Map::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row
            .try_get_raw(i)
            .map_err(|e| format!("column {:?}: {e}", column.name()))?;
        let declared = column.type_info().name().to_string();
        let stored = raw.type_info().name().to_string();
        let value = if raw.is_null() {
            Value::Null
        } else {
            match stored.as_str() {
                "INTEGER" => {
                    let v = get::<_, i64>(row, i)?;
                    match (declared.as_str(), v) {
                        ("BOOLEAN", 0) => Value::Bool(false),
                        ("BOOLEAN", 1) => Value::Bool(true),
                        _ => Value::from(v),
                    }
                }
                "REAL" => float(get::<_, f64>(row, i)?),
                "BLOB" => bytes(&get::<_, Vec<u8>>(row, i)?),
                _ => {
                    let text = get::<_, String>(row, i)?;
                    Value::String(sqlite_time_text(&declared, text))
                }
            }
        };
        out.insert(column.name().to_string(), value);
    }
    Ok(out)
}

/// Text in a DATE/TIME/DATETIME column in the common format when it parses as one
/// (SQLite's own functions write `YYYY-MM-DD HH:MM:SS`); other text unchanged.
fn sqlite_time_text(declared: &str, text: String) -> String {
    let t = text.trim();
    let parsed = match declared {
        "DATETIME" => DateTime::parse_from_rfc3339(t)
            .map(|d| d.format(ZONED).to_string())
            .or_else(|_| {
                DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%:z")
                    .map(|d| d.format(ZONED).to_string())
            })
            .or_else(|_| {
                NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
                    .map(|d| d.format(DATETIME).to_string())
            })
            .ok(),
        "DATE" => NaiveDate::parse_from_str(t, DATE)
            .map(|d| d.format(DATE).to_string())
            .ok(),
        "TIME" => NaiveTime::parse_from_str(t, TIME)
            .map(|d| d.format(TIME).to_string())
            .ok(),
        _ => None,
    };
    parsed.unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
        assert_eq!(float32(1.1), serde_json::json!(1.1));
        assert_eq!(
            unsigned(u64::MAX),
            Value::String("18446744073709551615".into())
        );
        assert_eq!(unsigned(7), Value::from(7));
        assert_eq!(bytes(&[0, 255]), Value::String("AP8=".into()));
        assert_eq!(
            uuid_text(&[0x12; 16]),
            "12121212-1212-1212-1212-121212121212"
        );
        assert_eq!(
            sqlite_time_text("DATETIME", "2024-01-02 03:04:05".into()),
            "2024-01-02T03:04:05"
        );
        assert_eq!(sqlite_time_text("DATETIME", "soon".into()), "soon");
        assert_eq!(
            sqlite_time_text("TEXT", "2024-01-02 03:04:05".into()),
            "2024-01-02 03:04:05"
        );
    }
}
