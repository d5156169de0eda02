//! Statement parameters: JSON values checked, then bound the way each driver needs.
//!
//! Why: modules pass parameters as JSON (docs/DATABASES.md): null, booleans, integers that
//! fit an i64, floats and strings; arrays and objects have no SQL meaning and are refused.
//!
//! How, per dialect: MySQL and SQLite take each value with its own type and convert on the
//! server. PostgreSQL must infer each parameter's type from the statement (docs/DATABASES.md,
//! "PostgreSQL infers parameter types"). sqlx always binds in PostgreSQL's *binary* format, where the bytes depend on the
//! type, so a value sent as "unspecified" could not be read by the server. So the statement is
//! first prepared with every parameter type unspecified (sqlx's `prepare_with(sql, &[])`: the
//! server infers the types and sqlx caches that statement), and each value is then encoded in the
//! type the server chose: a JSON string for an `integer` parameter is parsed as an integer, as
//! PostgreSQL would parse untyped text. A type the host cannot encode is a `BadStatement` naming
//! the parameter and the type, with the advice to cast.

use std::str::FromStr;

use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::mysql::MySqlArguments;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgTypeInfo, PgTypeKind};
use sqlx::sqlite::SqliteArguments;
use sqlx::types::chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::types::BigDecimal;
use sqlx::{Arguments, Encode, Postgres, Type};

/// One checked parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Text(String),
}

/// Checks every value; the error names the 1-based parameter.
pub fn check(values: &[Value]) -> Result<Vec<Param>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let n = i + 1;
            Ok(match value {
                Value::Null => Param::Null,
                Value::Bool(b) => Param::Bool(*b),
                Value::Number(number) => match (number.as_i64(), number.as_f64()) {
                    (Some(i), _) => Param::Int(i),
                    (None, _) if number.is_u64() => {
                        return Err(format!(
                            "parameter {n}: {number} does not fit a signed 64-bit integer; pass it as a string"
                        ))
                    }
                    (None, Some(f)) => Param::Float(f),
                    (None, None) => return Err(format!("parameter {n}: {number} is not a number SQL can take")),
                },
                Value::String(s) => Param::Text(s.clone()),
                Value::Array(_) => return Err(format!("parameter {n} is an array; parameters are null, booleans, numbers or strings")),
                Value::Object(_) => return Err(format!("parameter {n} is an object; parameters are null, booleans, numbers or strings")),
            })
        })
        .collect()
}

/// MySQL arguments: each value with its own type; the server converts.
pub fn mysql(params: &[Param]) -> Result<MySqlArguments, String> {
    let mut args = MySqlArguments::default();
    for param in params {
        match param {
            Param::Null => args.add(Option::<String>::None),
            Param::Bool(b) => args.add(*b),
            Param::Int(i) => args.add(*i),
            Param::Float(f) => args.add(*f),
            Param::Text(s) => args.add(s.clone()),
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(args)
}

/// SQLite arguments: each value with its own type (SQLite's columns have affinities, not types).
pub fn sqlite(params: &[Param]) -> Result<SqliteArguments<'static>, String> {
    let mut args = SqliteArguments::default();
    for param in params {
        match param {
            Param::Null => args.add(Option::<i64>::None),
            Param::Bool(b) => args.add(*b),
            Param::Int(i) => args.add(*i),
            Param::Float(f) => args.add(*f),
            Param::Text(s) => args.add(s.clone()),
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(args)
}

/// PostgreSQL arguments, each encoded in the type the server inferred for it (`types`, from
/// preparing the statement with no parameter types).
pub fn postgres(params: &[Param], types: &[PgTypeInfo]) -> Result<PgArguments, String> {
    if params.len() != types.len() {
        return Err(format!(
            "the statement takes {} parameter(s) and {} were given",
            types.len(),
            params.len()
        ));
    }
    let mut args = PgArguments::default();
    for (i, (param, ty)) in params.iter().zip(types).enumerate() {
        let value = pg_value(param, ty).map_err(|e| {
            format!(
                "parameter {}: {e} (the server expects {}; a cast such as CAST(? AS text) in the SQL lets it take a string)",
                i + 1,
                sqlx::TypeInfo::name(ty)
            )
        })?;
        args.add(PgBind {
            value,
            ty: ty.clone(),
        })
        .map_err(|e| format!("parameter {}: {e}", i + 1))?;
    }
    Ok(args)
}

/// PostgreSQL type OIDs the host encodes (pg_type.dat).
mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const JSONB: u32 = 3802;
}

/// A value in the shape of the PostgreSQL type it is sent as.
#[derive(Debug, Clone)]
enum PgValue {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Numeric(BigDecimal),
    /// Text-like types (text, varchar, json, enums, …) whose binary format is the UTF-8 text.
    Text(String),
    /// jsonb's binary format: a version byte, then the text.
    Jsonb(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(NaiveDateTime),
    Timestamptz(DateTime<Utc>),
}

/// `param` as a value of type `ty`, converted as PostgreSQL would convert untyped text.
fn pg_value(param: &Param, ty: &PgTypeInfo) -> Result<PgValue, String> {
    if *param == Param::Null {
        return Ok(PgValue::Null);
    }
    // Types the server described always carry their OID.
    let Some(id) = ty.oid().map(|o| o.0) else {
        return Err("a type the host cannot send".into());
    };
    match id {
        oid::BOOL => match param {
            Param::Bool(b) => Ok(PgValue::Bool(*b)),
            Param::Int(0) => Ok(PgValue::Bool(false)),
            Param::Int(1) => Ok(PgValue::Bool(true)),
            Param::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "yes" | "on" | "1" => Ok(PgValue::Bool(true)),
                "f" | "false" | "no" | "off" | "0" => Ok(PgValue::Bool(false)),
                _ => Err(format!("{s:?} is not a boolean")),
            },
            _ => Err("not a boolean".into()),
        },
        oid::INT2 => integer(param).and_then(|i| {
            i16::try_from(i)
                .map(PgValue::I16)
                .map_err(|_| format!("{i} is out of range for smallint"))
        }),
        oid::INT4 => integer(param).and_then(|i| {
            i32::try_from(i)
                .map(PgValue::I32)
                .map_err(|_| format!("{i} is out of range for integer"))
        }),
        oid::INT8 => integer(param).map(PgValue::I64),
        // Narrowing to f32 is what the server's own float4 input does.
        #[allow(clippy::cast_possible_truncation)]
        oid::FLOAT4 => float(param).map(|f| PgValue::F32(f as f32)),
        oid::FLOAT8 => float(param).map(PgValue::F64),
        oid::NUMERIC => {
            let text = match param {
                Param::Int(i) => i.to_string(),
                Param::Float(f) => f.to_string(),
                Param::Text(s) => s.trim().to_string(),
                _ => return Err("not a number".into()),
            };
            BigDecimal::from_str(&text)
                .map(PgValue::Numeric)
                .map_err(|_| format!("{text:?} is not a number"))
        }
        oid::TEXT
        | oid::VARCHAR
        | oid::BPCHAR
        | oid::NAME
        | oid::UNKNOWN
        | oid::JSON
        | oid::XML => Ok(PgValue::Text(as_text(param))),
        oid::JSONB => Ok(PgValue::Jsonb(as_text(param))),
        oid::BYTEA => match param {
            Param::Text(s) => Ok(PgValue::Bytes(s.as_bytes().to_vec())),
            _ => Err("bytes are passed as a string".into()),
        },
        oid::DATE => text(param).and_then(|s| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(PgValue::Date)
                .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
        }),
        oid::TIME => text(param).and_then(|s| {
            parse_time(s)
                .map(PgValue::Time)
                .ok_or_else(|| format!("{s:?} is not a time (HH:MM:SS[.f])"))
        }),
        oid::TIMESTAMP => text(param).and_then(|s| {
            parse_naive_datetime(s)
                .map(PgValue::Timestamp)
                .ok_or_else(|| format!("{s:?} is not a timestamp (YYYY-MM-DDTHH:MM:SS[.f])"))
        }),
        // Without an offset the time is taken as UTC: sqlx sets the session's TimeZone to UTC.
        oid::TIMESTAMPTZ => text(param).and_then(|s| {
            parse_zoned_datetime(s)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|| parse_naive_datetime(s).map(|t| t.and_utc()))
                .map(PgValue::Timestamptz)
                .ok_or_else(|| {
                    format!("{s:?} is not a timestamp (YYYY-MM-DDTHH:MM:SS[.f][±HH:MM])")
                })
        }),
        // Not built in: the kind is known (sqlx looked it up when the server described it).
        _ => match ty.kind() {
            PgTypeKind::Domain(base) => pg_value(param, base),
            PgTypeKind::Enum(_) => Ok(PgValue::Text(as_text(param))),
            _ => Err("a type the host cannot send".into()),
        },
    }
}

/// The text form of a scalar, as an untyped parameter would be written.
fn as_text(param: &Param) -> String {
    match param {
        Param::Null => String::new(),
        Param::Bool(b) => b.to_string(),
        Param::Int(i) => i.to_string(),
        Param::Float(f) => f.to_string(),
        Param::Text(s) => s.clone(),
    }
}

/// An integer from an integer, a whole float or a decimal string.
fn integer(param: &Param) -> Result<i64, String> {
    match param {
        Param::Int(i) => Ok(*i),
        // Exact: a whole float within i64's range converts without loss.
        #[allow(clippy::cast_possible_truncation)]
        Param::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        Param::Text(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not an integer")),
        _ => Err("not an integer".into()),
    }
}

/// A float from a number or a numeric string.
fn float(param: &Param) -> Result<f64, String> {
    match param {
        // The nearest double, as the server's own conversion does.
        #[allow(clippy::cast_precision_loss)]
        Param::Int(i) => Ok(*i as f64),
        Param::Float(f) => Ok(*f),
        Param::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number")),
        _ => Err("not a number".into()),
    }
}

/// The string of a string parameter.
fn text(param: &Param) -> Result<&str, String> {
    match param {
        Param::Text(s) => Ok(s),
        _ => Err("dates and times are passed as strings".into()),
    }
}

/// `HH:MM:SS[.f]` or `HH:MM`.
fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f]`, or a bare date (midnight).
fn parse_naive_datetime(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        })
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f]±HH:MM` (or `Z`).
fn parse_zoned_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
}

/// One PostgreSQL argument: the value and the type the server inferred, which it is sent as.
struct PgBind {
    value: PgValue,
    ty: PgTypeInfo,
}

impl Type<Postgres> for PgBind {
    /// Never used: [`Encode::produces`] always names the inferred type.
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("unknown")
    }
}

impl Encode<'_, Postgres> for PgBind {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match &self.value {
            PgValue::Null => Ok(IsNull::Yes),
            PgValue::Bool(v) => <bool as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::I16(v) => <i16 as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::I32(v) => <i32 as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::I64(v) => <i64 as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::F32(v) => <f32 as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::F64(v) => <f64 as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::Numeric(v) => <BigDecimal as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::Text(v) => {
                buf.extend_from_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            PgValue::Jsonb(v) => {
                buf.push(1);
                buf.extend_from_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            PgValue::Bytes(v) => {
                buf.extend_from_slice(v);
                Ok(IsNull::No)
            }
            PgValue::Date(v) => <NaiveDate as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::Time(v) => <NaiveTime as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::Timestamp(v) => <NaiveDateTime as Encode<Postgres>>::encode_by_ref(v, buf),
            PgValue::Timestamptz(v) => <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(v, buf),
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_are_checked() {
        let ok =
            check(&[json!(null), json!(true), json!(-3), json!(1.5), json!("x")]).expect("scalars");
        assert_eq!(
            ok,
            vec![
                Param::Null,
                Param::Bool(true),
                Param::Int(-3),
                Param::Float(1.5),
                Param::Text("x".into())
            ]
        );
        let e = check(&[json!(1), json!([1, 2])]).expect_err("array");
        assert!(e.starts_with("parameter 2 is an array"), "{e}");
        let e = check(&[json!({"a": 1})]).expect_err("object");
        assert!(e.starts_with("parameter 1 is an object"), "{e}");
        let e = check(&[json!(u64::MAX)]).expect_err("u64");
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn untyped_text_converts_like_postgres() {
        let int4 = <i32 as Type<Postgres>>::type_info();
        assert!(matches!(
            pg_value(&Param::Text(" 42 ".into()), &int4),
            Ok(PgValue::I32(42))
        ));
        assert!(pg_value(&Param::Int(1 << 40), &int4).is_err());
        assert!(pg_value(&Param::Float(1.5), &int4).is_err());
        let tz = <DateTime<Utc> as Type<Postgres>>::type_info();
        let Ok(PgValue::Timestamptz(t)) =
            pg_value(&Param::Text("2024-05-06T07:08:09+02:00".into()), &tz)
        else {
            panic!("timestamptz");
        };
        assert_eq!(t.to_rfc3339(), "2024-05-06T05:08:09+00:00");
    }
}
