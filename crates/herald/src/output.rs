//! How answers look to people: aligned tables for lists, `key: value` lines for
//! single resources. Fields are read by name from the server's JSON, so a field
//! the server adds later still shows (after the known ones) instead of breaking.

use serde_json::{Map, Value};

/// Shown for null and missing values.
const NONE: &str = "-";

/// One cell's text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => NONE.to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A webhook's scope: its project key, or `global`.
pub fn scope(webhook: &Value) -> String {
    match &webhook["project"] {
        Value::String(project) => project.clone(),
        _ => "global".to_owned(),
    }
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    std::iter::once(&header_row)
        .chain(rows)
        .map(|row| format_row(row, &widths))
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_row(row: &[String], widths: &[usize]) -> String {
    let last = row.len().saturating_sub(1);
    let mut line = String::new();
    for (i, (text, width)) in row.iter().zip(widths).enumerate() {
        if i == last {
            line.push_str(text);
        } else {
            let pad = width - text.chars().count();
            line.push_str(text);
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    line.trim_end().to_owned()
}

/// `key: value` lines: the keys in `order` first (when present), then the rest
/// in alphabetical order; nested objects are indented under their key.
pub fn fields(object: &Value, order: &[&str]) -> String {
    let Some(map) = object.as_object() else {
        return cell(object);
    };
    let mut keys: Vec<&str> = order
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    // Sorted, so the rest reads the same whatever order the server wrote them in.
    let mut rest: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !order.contains(k))
        .collect();
    rest.sort_unstable();
    keys.extend(rest);
    let width = keys
        .iter()
        .map(|k| k.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut lines = Vec::with_capacity(keys.len());
    for key in keys {
        let label = format!("{key}:");
        match &map[key] {
            Value::Object(inner) if !inner.is_empty() => {
                lines.push(label);
                lines.push(indent(&nested(inner)));
            }
            value => {
                let text = cell(value);
                if text.contains('\n') {
                    lines.push(label);
                    lines.push(indent(&text));
                } else {
                    lines.push(format!("{label:width$}  {text}"));
                }
            }
        }
    }
    lines.join("\n")
}

fn nested(map: &Map<String, Value>) -> String {
    fields(&Value::Object(map.clone()), &[])
}

pub fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_by_their_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "first".to_owned(), "x".to_owned()],
            vec!["long-id".to_owned(), "2".to_owned(), "y".to_owned()],
        ];
        assert_eq!(
            table(&["ID", "NAME", "URL"], &rows),
            "ID       NAME   URL\na        first  x\nlong-id  2      y"
        );
    }

    #[test]
    fn cells_show_nulls_lists_and_scalars() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["a:*", "b"])), "a:*,b");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!(201)), "201");
        assert_eq!(scope(&json!({"project": null})), "global");
        assert_eq!(scope(&json!({"project": "p"})), "p");
    }

    #[test]
    fn fields_put_known_keys_first_then_the_rest() {
        let text = fields(
            &json!({"b": 1, "id": "x", "zz": null, "obj": {"k": "v"}}),
            &["id", "missing"],
        );
        assert_eq!(text, "id:   x\nb:    1\nobj:\n  k:  v\nzz:   -");
        let text = fields(&json!({"body": "line 1\nline 2", "s": 200}), &["s"]);
        assert_eq!(text, "s:     200\nbody:\n  line 1\n  line 2");
    }
}
