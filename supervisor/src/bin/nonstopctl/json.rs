//! JSON as nonstopctl prints it. serde_json writes typed values in field
//! order (compact: `watch --json`); `pretty` re-indents that text by the
//! rules scripts and people have seen since the first release: two spaces,
//! `"key": value`, and arrays of scalars (alarms) on one line, `["a", "b"]`.
//! The escaping and the numbers are nonstopctl's own as well: `\u0008`
//! and `\u000c` rather than `\b` and `\f`, U+2028 and U+2029 escaped,
//! floats as Rust prints them (`1`, not `1.0`).

use std::io;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use zbus::zvariant::Value;

/// serde_json's compact formatter with nonstopctl's escapes and floats.
struct Style;

impl Formatter for Style {
    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        write!(w, "{v}")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        write!(w, "{v}")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // The line and paragraph separators end a line in JavaScript.
        let mut rest = fragment;
        while let Some(i) = rest.find(['\u{2028}', '\u{2029}']) {
            w.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// One line of JSON.
pub fn compact<T: Serialize + ?Sized>(value: &T) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, Style);
    // Our values are strings, numbers, booleans, sequences and maps with
    // string keys: nothing serde_json can refuse.
    value
        .serialize(&mut ser)
        .expect("JSON of plain values serializes");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// Indented, with a final newline.
pub fn pretty<T: Serialize + ?Sized>(value: &T) -> String {
    let text = compact(value);
    let mut at = 0;
    let mut out = reindent(&text, &mut at, 0);
    out.push('\n');
    out
}

/// The value of compact JSON `text` that starts at byte `at` (moved past
/// it), indented for `level`.
fn reindent(text: &str, at: &mut usize, level: usize) -> String {
    let b = text.as_bytes();
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(level));
    };
    let start = *at;
    match b[start] {
        b'{' => {
            *at += 1;
            if b[*at] == b'}' {
                *at += 1;
                return "{}".into();
            }
            let mut out = String::from("{");
            loop {
                newline(&mut out, level + 1);
                let key = *at;
                skip_string(b, at);
                out.push_str(&text[key..*at]);
                *at += 1; // ':'
                out.push_str(": ");
                out.push_str(&reindent(text, at, level + 1));
                *at += 1; // ',' or '}'
                if b[*at - 1] == b'}' {
                    break;
                }
                out.push(',');
            }
            newline(&mut out, level);
            out.push('}');
            out
        }
        b'[' => {
            *at += 1;
            let mut items = Vec::new();
            let mut flat = true;
            if b[*at] == b']' {
                *at += 1;
                return "[]".into();
            }
            loop {
                flat &= !matches!(b[*at], b'[' | b'{');
                items.push(reindent(text, at, level + 1));
                *at += 1; // ',' or ']'
                if b[*at - 1] == b']' {
                    break;
                }
            }
            if flat {
                return format!("[{}]", items.join(", "));
            }
            let mut out = String::from("[");
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                newline(&mut out, level + 1);
                out.push_str(item);
            }
            newline(&mut out, level);
            out.push(']');
            out
        }
        b'"' => {
            skip_string(b, at);
            text[start..*at].to_owned()
        }
        _ => {
            while *at < b.len() && !matches!(b[*at], b',' | b']' | b'}') {
                *at += 1;
            }
            text[start..*at].to_owned()
        }
    }
}

/// Moves `at` past the string that starts there (quotes included).
fn skip_string(b: &[u8], at: &mut usize) {
    *at += 1;
    while b[*at] != b'"' {
        *at += if b[*at] == b'\\' { 2 } else { 1 };
    }
    *at += 1;
}

/// Any D-Bus value as JSON: numbers, booleans and strings as they are,
/// arrays and structures as arrays, anything else (dictionaries, file
/// descriptors) as its text.
pub struct DbusJson<'a>(pub &'a Value<'a>);

impl Serialize for DbusJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::U8(n) => s.serialize_u8(*n),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::I16(n) => s.serialize_i16(*n),
            Value::U16(n) => s.serialize_u16(*n),
            Value::I32(n) => s.serialize_i32(*n),
            Value::U32(n) => s.serialize_u32(*n),
            Value::I64(n) => s.serialize_i64(*n),
            Value::U64(n) => s.serialize_u64(*n),
            // Not finite: null (serde_json).
            Value::F64(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v.as_str()),
            Value::Signature(v) => s.serialize_str(&v.to_string()),
            Value::ObjectPath(p) => s.serialize_str(p.as_str()),
            Value::Value(inner) => DbusJson(inner).serialize(s),
            Value::Array(a) => s.collect_seq(a.iter().map(DbusJson)),
            Value::Structure(st) => s.collect_seq(st.fields().iter().map(DbusJson)),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// A JSON object whose keys come in the order given.
pub struct Ordered<'a, V>(pub Vec<(&'a str, V)>);

impl<V: Serialize> Serialize for Ordered<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Sample {
        a: &'static str,
        b: (u64, i64),
        c: Vec<u8>,
        d: Ordered<'static, u8>,
        e: f64,
    }

    #[test]
    fn json_text() {
        let j = Sample {
            a: "q\"\\\n\u{1}",
            b: (1, -1),
            c: vec![],
            d: Ordered(vec![]),
            e: f64::NAN,
        };
        assert_eq!(
            compact(&j),
            r#"{"a":"q\"\\\n\u0001","b":[1,-1],"c":[],"d":{},"e":null}"#
        );
        assert_eq!(
            pretty(&j),
            "{\n  \"a\": \"q\\\"\\\\\\n\\u0001\",\n  \"b\": [1, -1],\n  \"c\": [],\n  \"d\": {},\n  \"e\": null\n}\n"
        );
        let nested = [Ordered(vec![("x", true)])];
        assert_eq!(pretty(&nested), "[\n  {\n    \"x\": true\n  }\n]\n");
    }

    #[test]
    fn escapes_and_numbers_as_before_serde() {
        assert_eq!(
            compact("\u{8}\u{c}\t\r\u{1f}\u{7f}é\u{2028}x\u{2029}"),
            r#""\u0008\u000c\t\r\u001f"#.to_owned() + "\u{7f}é" + r#"\u2028x\u2029""#
        );
        assert_eq!(
            compact(&[1.0, 0.1, 1e21, 1e-7, -0.0, f64::INFINITY]),
            "[1,0.1,1000000000000000000000,0.0000001,-0,null]"
        );
        // Keys and strings inside arrays: the brackets in them are text.
        let tricky = Ordered(vec![("[{\"", vec!["],}", "\\"]), ("k", vec![])]);
        assert_eq!(
            pretty(&tricky),
            "{\n  \"[{\\\"\": [\"],}\", \"\\\\\"],\n  \"k\": []\n}\n"
        );
        // A list with one composite item puts every item on its own line.
        let mixed = Ordered(vec![(
            "m",
            vec![
                serde_json::json!(1),
                serde_json::json!(["z"]),
                serde_json::json!([]),
            ],
        )]);
        assert_eq!(
            pretty(&mixed),
            "{\n  \"m\": [\n    1,\n    [\"z\"],\n    []\n  ]\n}\n"
        );
    }

    #[test]
    fn dbus_values() {
        let v = Value::from(vec![Value::from(1i32), Value::from("a")]);
        let st = Value::from((String::from("s"), 2u64, false));
        let nested = Value::Value(Box::new(Value::from(-3i16)));
        assert_eq!(compact(&DbusJson(&st)), r#"["s",2,false]"#);
        assert_eq!(compact(&DbusJson(&nested)), "-3");
        assert!(compact(&DbusJson(&v)).starts_with('['));
    }
}
