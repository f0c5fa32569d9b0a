//! Values between sea-orm and rusqlite: parameters bound without copying, and result rows
//! typed the way sea-orm reads them.
//!
//! sea-orm's proxy rows are strict: a field of type `i64` needs a `Value::BigInt`, a `bool` a
//! `Value::Bool`, a `String` a `Value::String`, while SQLite hands back only integers, reals,
//! text and blobs. The column's declared type says which it is (sea-query's SQLite names:
//! `integer` for every integer column, `boolean`, `varchar`, `text`, `blob`); every integer
//! of the schema is an `i64` (a migration widened the last 32-bit ones), so one integer
//! variant serves. An expression (`count(*)`, `max(…)`) and a `RETURNING` column have no
//! declared type: an expression's integers are read as `i64`, the type the store reads
//! every computed number as, and a returned column is typed by its table (`session.rs`).
//!
//! A value of the wrong variant fails a plain field loudly, but an `Option` field reads it
//! as `None` (sea-orm takes any unreadable value for NULL): a variant chosen wrongly here
//! would hide data, which the tests of every optional field guard against.

use std::collections::BTreeMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use sea_orm::{DbErr, ProxyRow, Value};

/// How a result column's values are read, from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    /// Any integer column: an `i64` field.
    BigInt,
    Double,
    Text,
    Json,
    Bytes,
    /// An expression: read as SQLite stored it (integers as `i64`).
    Untyped,
}

impl Kind {
    /// The kind of a column declared `declared` (`None` for an expression).
    pub(super) fn of(declared: Option<&str>) -> Self {
        let Some(declared) = declared else { return Self::Untyped };
        let name = declared.split('(').next().unwrap_or_default().trim().to_ascii_lowercase();
        match name.as_str() {
            "boolean" | "bool" => Self::Bool,
            "integer" | "int" | "bigint" | "int8" | "smallint" | "tinyint" | "mediumint" => Self::BigInt,
            "real" | "double" | "float" | "numeric" | "decimal" => Self::Double,
            "json_text" | "jsonb_text" | "json" => Self::Json,
            "blob" | "binary" | "varbinary" | "blob_text" => Self::Bytes,
            _ => Self::Text,
        }
    }

    /// This kind's NULL (sea-orm would take any, see above; a typed one reads true in logs).
    fn null(self) -> Value {
        match self {
            Self::Bool => Value::Bool(None),
            Self::BigInt | Self::Untyped => Value::BigInt(None),
            Self::Double => Value::Double(None),
            Self::Text => Value::String(None),
            Self::Json => Value::Json(None),
            Self::Bytes => Value::Bytes(None),
        }
    }

    /// `raw`, as sea-orm reads a field of this kind.
    pub(super) fn read(self, name: &str, raw: ValueRef<'_>) -> Result<Value, DbErr> {
        let mismatch = || DbErr::Type(format!("column {name}: a {:?} value in a {self:?} column", raw.data_type()));
        Ok(match (self, raw) {
            (_, ValueRef::Null) => self.null(),
            (Self::Bool, ValueRef::Integer(n)) => Value::Bool(Some(n != 0)),
            (Self::BigInt | Self::Untyped, ValueRef::Integer(n)) => Value::BigInt(Some(n)),
            (Self::Double | Self::Untyped, ValueRef::Real(x)) => Value::Double(Some(x)),
            (Self::Double, ValueRef::Integer(n)) => Value::Double(Some(n as f64)),
            (Self::Text | Self::Untyped, ValueRef::Text(text)) => Value::String(Some(utf8(name, text)?.to_owned())),
            (Self::Text, ValueRef::Integer(n)) => Value::String(Some(n.to_string())),
            (Self::Json, ValueRef::Text(text)) => {
                let json = serde_json::from_str(utf8(name, text)?)
                    .map_err(|err| DbErr::Json(format!("column {name}: {err}")))?;
                Value::Json(Some(Box::new(json)))
            }
            (Self::Bytes | Self::Untyped, ValueRef::Blob(bytes)) => Value::Bytes(Some(bytes.to_vec())),
            _ => return Err(mismatch()),
        })
    }
}

fn utf8<'a>(name: &str, text: &'a [u8]) -> Result<&'a str, DbErr> {
    std::str::from_utf8(text).map_err(|err| DbErr::Type(format!("column {name}: {err}")))
}

/// The columns of a prepared statement's result: names and kinds, in select order.
pub(super) fn columns(statement: &rusqlite::Statement<'_>) -> Vec<(String, Kind)> {
    statement.columns().map(|column| (column.name().to_owned(), Kind::of(column.decl_type()))).collect()
}

/// The table a write statement (`INSERT INTO "t"`, `UPDATE "t"`, `DELETE FROM "t"`, as
/// sea-query writes them) changes: its `RETURNING` columns are that table's.
pub(super) fn written_table(sql: &str) -> Option<&str> {
    let rest = ["INSERT INTO ", "UPDATE ", "DELETE FROM "].iter().find_map(|verb| sql.strip_prefix(verb))?;
    let quoted = rest.strip_prefix('"')?;
    quoted.split('"').next()
}

/// One result row as sea-orm's proxy takes it.
pub(super) fn row(columns: &[(String, Kind)], row: &rusqlite::Row<'_>) -> Result<ProxyRow, DbErr> {
    let mut values = BTreeMap::new();
    for (index, (name, kind)) in columns.iter().enumerate() {
        let raw = row.get_ref(index).map_err(|err| DbErr::Type(format!("column {name}: {err}")))?;
        values.insert(name.clone(), kind.read(name, raw)?);
    }
    Ok(ProxyRow::new(values))
}

/// A parameter, bound as SQLite stores it (booleans as 0 and 1, JSON as text).
pub(super) struct Bind<'a>(pub &'a Value);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let integer = |n: Option<i64>| ToSqlOutput::Borrowed(n.map_or(ValueRef::Null, ValueRef::Integer));
        Ok(match self.0 {
            Value::Bool(b) => integer(b.map(i64::from)),
            Value::TinyInt(n) => integer(n.map(i64::from)),
            Value::SmallInt(n) => integer(n.map(i64::from)),
            Value::Int(n) => integer(n.map(i64::from)),
            Value::BigInt(n) => integer(*n),
            Value::TinyUnsigned(n) => integer(n.map(i64::from)),
            Value::SmallUnsigned(n) => integer(n.map(i64::from)),
            Value::Unsigned(n) => integer(n.map(i64::from)),
            Value::BigUnsigned(n) => integer(
                n.map(i64::try_from)
                    .transpose()
                    .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?,
            ),
            Value::Float(x) => ToSqlOutput::Borrowed(x.map_or(ValueRef::Null, |x| ValueRef::Real(f64::from(x)))),
            Value::Double(x) => ToSqlOutput::Borrowed(x.map_or(ValueRef::Null, ValueRef::Real)),
            Value::String(text) => {
                ToSqlOutput::Borrowed(text.as_deref().map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())))
            }
            Value::Char(c) => match c {
                Some(c) => ToSqlOutput::Owned(rusqlite::types::Value::Text(c.to_string())),
                None => ToSqlOutput::Borrowed(ValueRef::Null),
            },
            Value::Bytes(bytes) => ToSqlOutput::Borrowed(bytes.as_deref().map_or(ValueRef::Null, ValueRef::Blob)),
            Value::Json(json) => match json {
                Some(json) => ToSqlOutput::Owned(rusqlite::types::Value::Text(json.to_string())),
                None => ToSqlOutput::Borrowed(ValueRef::Null),
            },
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("Missive stores no values like {other:?} in SQLite").into(),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_pick_the_variant_sea_orm_reads() {
        assert_eq!(Kind::of(Some("integer")), Kind::BigInt);
        assert_eq!(Kind::of(Some("bigint")), Kind::BigInt);
        assert_eq!(Kind::of(Some("BOOLEAN")), Kind::Bool);
        assert_eq!(Kind::of(Some("varchar(64)")), Kind::Text);
        assert_eq!(Kind::of(Some("json_text")), Kind::Json);
        assert_eq!(Kind::of(None), Kind::Untyped);
        assert_eq!(Kind::BigInt.read("n", ValueRef::Integer(7)).unwrap(), Value::BigInt(Some(7)));
        assert_eq!(Kind::Untyped.read("n", ValueRef::Integer(7)).unwrap(), Value::BigInt(Some(7)));
        assert_eq!(Kind::Bool.read("b", ValueRef::Integer(1)).unwrap(), Value::Bool(Some(true)));
        assert_eq!(Kind::Bool.read("b", ValueRef::Null).unwrap(), Value::Bool(None));
        assert!(Kind::BigInt.read("n", ValueRef::Text(b"x")).is_err(), "never guessed");
    }

    #[test]
    fn written_tables_are_found_in_sea_querys_sql() {
        assert_eq!(written_table(r#"INSERT INTO "messages" ("id") VALUES (?) RETURNING "id""#), Some("messages"));
        assert_eq!(written_table(r#"UPDATE "users" SET "online" = ? RETURNING "online""#), Some("users"));
        assert_eq!(written_table(r#"DELETE FROM "mutes" WHERE 1"#), Some("mutes"));
        assert_eq!(written_table(r#"SELECT "id" FROM "users""#), None);
    }
}
