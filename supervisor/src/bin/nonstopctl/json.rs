//! JSON as nonstopctl prints it: keys in the order given, pretty with
//! short lists of scalars on one line.

use std::fmt::Write as _;

use zbus::zvariant::Value;

/// A JSON value, keys in the order given.
pub enum J {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub fn obj(fields: Vec<(&str, J)>) -> J {
        J::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn s(s: &str) -> J {
        J::Str(s.to_owned())
    }

    pub fn compact(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, None);
        s
    }

    pub fn pretty(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, Some(0));
        s.push('\n');
        s
    }

    pub fn write(&self, out: &mut String, indent: Option<usize>) {
        let newline = |out: &mut String, level: usize| {
            out.push('\n');
            for _ in 0..level {
                out.push_str("  ");
            }
        };
        match self {
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => {
                let _ = write!(out, "{n}");
            }
            J::Uint(n) => {
                let _ = write!(out, "{n}");
            }
            J::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            J::Float(_) => out.push_str("null"),
            J::Str(s) => write_json_str(out, s),
            J::Arr(items) => {
                out.push('[');
                // Short lists of scalars (alarms) stay on one line.
                let flat =
                    indent.is_none() || items.iter().all(|i| !matches!(i, J::Arr(_) | J::Obj(_)));
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                        if flat && indent.is_some() {
                            out.push(' ');
                        }
                    }
                    if let (false, Some(l)) = (flat, indent) {
                        newline(out, l + 1);
                    }
                    item.write(out, indent.map(|l| l + 1));
                }
                if let (false, Some(l), false) = (flat, indent, items.is_empty()) {
                    newline(out, l);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (n, (k, v)) in fields.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    if let Some(l) = indent {
                        newline(out, l + 1);
                    }
                    write_json_str(out, k);
                    out.push(':');
                    if indent.is_some() {
                        out.push(' ');
                    }
                    v.write(out, indent.map(|l| l + 1));
                }
                if let (Some(l), false) = (indent, fields.is_empty()) {
                    newline(out, l);
                }
                out.push('}');
            }
        }
    }
}

pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Any D-Bus value as JSON (structures become arrays).
pub fn value_json(v: &Value<'_>) -> J {
    match v {
        Value::U8(n) => J::Uint((*n).into()),
        Value::Bool(b) => J::Bool(*b),
        Value::I16(n) => J::Int((*n).into()),
        Value::U16(n) => J::Uint((*n).into()),
        Value::I32(n) => J::Int((*n).into()),
        Value::U32(n) => J::Uint((*n).into()),
        Value::I64(n) => J::Int(*n),
        Value::U64(n) => J::Uint(*n),
        Value::F64(f) => J::Float(*f),
        Value::Str(s) => J::s(s.as_str()),
        Value::Signature(s) => J::Str(s.to_string()),
        Value::ObjectPath(p) => J::s(p.as_str()),
        Value::Value(inner) => value_json(inner),
        Value::Array(a) => J::Arr(a.iter().map(value_json).collect()),
        Value::Structure(s) => J::Arr(s.fields().iter().map(value_json).collect()),
        other => J::Str(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text() {
        let j = J::obj(vec![
            ("a", J::s("q\"\\\n\u{1}")),
            ("b", J::Arr(vec![J::Uint(1), J::Int(-1)])),
            ("c", J::Arr(vec![])),
            ("d", J::Obj(vec![])),
            ("e", J::Float(f64::NAN)),
        ]);
        assert_eq!(
            j.compact(),
            r#"{"a":"q\"\\\n\u0001","b":[1,-1],"c":[],"d":{},"e":null}"#
        );
        assert_eq!(
            j.pretty(),
            "{\n  \"a\": \"q\\\"\\\\\\n\\u0001\",\n  \"b\": [1, -1],\n  \"c\": [],\n  \"d\": {},\n  \"e\": null\n}\n"
        );
        let nested = J::Arr(vec![J::obj(vec![("x", J::Bool(true))])]);
        assert_eq!(nested.pretty(), "[\n  {\n    \"x\": true\n  }\n]\n");
    }
}
