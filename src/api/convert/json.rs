//! protobuf `Struct` ⇄ JSON objects, for structured message content.

use prost_types::{Struct, value::Kind};

/// A protobuf Struct as a JSON object.
pub fn struct_to_json(value: Struct) -> serde_json::Value {
    serde_json::Value::Object(value.fields.into_iter().map(|(key, value)| (key, value_to_json(value))).collect())
}

/// A JSON object as a protobuf Struct; `None` for anything else.
pub fn json_to_struct(value: serde_json::Value) -> Option<Struct> {
    match json_to_value(value).kind {
        Some(Kind::StructValue(object)) => Some(object),
        _ => None,
    }
}

fn value_to_json(value: prost_types::Value) -> serde_json::Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(number)) => {
            serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Some(Kind::StringValue(text)) => serde_json::Value::String(text),
        Some(Kind::BoolValue(flag)) => serde_json::Value::Bool(flag),
        Some(Kind::StructValue(object)) => struct_to_json(object),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(list.values.into_iter().map(value_to_json).collect()),
    }
}

fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        serde_json::Value::String(text) => Kind::StringValue(text),
        serde_json::Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.into_iter().map(json_to_value).collect() })
        }
        serde_json::Value::Object(fields) => Kind::StructValue(Struct {
            fields: fields.into_iter().map(|(key, value)| (key, json_to_value(value))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_survive_the_round_trip() {
        let json = serde_json::json!({"options": [{"title": "yes", "n": 1.5}, null, true], "empty": {}});
        let back = struct_to_json(json_to_struct(json.clone()).unwrap());
        assert_eq!(back, json);
        assert!(json_to_struct(serde_json::json!([1])).is_none());
    }
}
