//! Picks a chart when the shape of a result suits one: a label column and one or more numeric columns.
//!
//! - the label looks like time (a date, a month, a year, a column named like one): `line`;
//! - one measure over at most six labels: `pie`;
//! - otherwise: `bar`.
//!
//! The chart is `{"type", "x", "y", "data": {"labels": [...], "datasets": [{"label", "data": [...]}]}}`, which
//! Chart.js and ECharts front ends can both draw without further work.

use serde_json::{Map, Value, json};

/// Results with more rows than this are tables, not charts.
const MAX_POINTS: usize = 200;
const MAX_PIE_SLICES: usize = 6;

/// A chart for the result, or `None` when it does not suit one (a single row, no numeric column, too many points).
pub fn suggest(columns: &[String], rows: &[Map<String, Value>]) -> Option<Value> {
    if rows.len() < 2 || rows.len() > MAX_POINTS || columns.len() < 2 {
        return None;
    }
    let numeric: Vec<&String> = columns.iter().filter(|c| rows.iter().all(|r| is_number(r.get(*c)))).collect();
    let label = columns.iter().find(|c| !numeric.contains(c)).or_else(|| columns.first())?;
    let measures: Vec<&String> = numeric.into_iter().filter(|c| *c != label).collect();
    if measures.is_empty() {
        return None;
    }
    let labels: Vec<Value> = rows.iter().map(|r| r.get(label).cloned().unwrap_or(Value::Null)).collect();
    let kind = if is_time_like(label, &labels) {
        "line"
    } else if measures.len() == 1 && rows.len() <= MAX_PIE_SLICES {
        "pie"
    } else {
        "bar"
    };
    let datasets: Vec<Value> = measures
        .iter()
        .map(|m| json!({"label": m, "data": rows.iter().map(|r| r.get(*m).cloned().unwrap_or(Value::Null)).collect::<Vec<_>>()}))
        .collect();
    Some(json!({"type": kind, "x": label, "y": measures, "data": {"labels": labels, "datasets": datasets}}))
}

fn is_number(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Number(_)) | Some(Value::Null))
}

fn is_time_like(column: &str, labels: &[Value]) -> bool {
    let name = column.to_ascii_lowercase();
    let named_like_time =
        ["date", "day", "month", "year", "week", "time", "period", "quarter"].iter().any(|word| name.contains(word));
    let looks_like_dates = labels.iter().all(|v| {
        v.as_str().is_some_and(|s| {
            let b = s.as_bytes();
            b.len() >= 7
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[5..7].iter().all(u8::is_ascii_digit)
        })
    });
    named_like_time || looks_like_dates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(data: Value) -> Vec<Map<String, Value>> {
        serde_json::from_value(data).unwrap()
    }

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn months_make_a_line_chart() {
        let r = rows(json!([{"month": "2024-01", "sales": 10}, {"month": "2024-02", "sales": 12.5}]));
        let chart = suggest(&cols(&["month", "sales"]), &r).unwrap();
        assert_eq!(chart["type"], "line");
        assert_eq!(chart["data"]["labels"], json!(["2024-01", "2024-02"]));
        assert_eq!(chart["data"]["datasets"][0]["data"], json!([10, 12.5]));
    }

    #[test]
    fn few_categories_with_one_measure_make_a_pie() {
        let r = rows(json!([{"region": "north", "n": 3}, {"region": "south", "n": 5}, {"region": "west", "n": 1}]));
        assert_eq!(suggest(&cols(&["region", "n"]), &r).unwrap()["type"], "pie");
    }

    #[test]
    fn many_categories_or_measures_make_bars() {
        let r: Vec<_> =
            (0..10).map(|i| rows(json!([{"name": format!("p{i}"), "qty": i, "revenue": i * 2}])).remove(0)).collect();
        let chart = suggest(&cols(&["name", "qty", "revenue"]), &r).unwrap();
        assert_eq!(chart["type"], "bar");
        assert_eq!(chart["y"], json!(["qty", "revenue"]));
    }

    #[test]
    fn no_chart_for_single_rows_text_only_or_huge_results() {
        assert!(suggest(&cols(&["n", "total"]), &rows(json!([{"n": "a", "total": 1}]))).is_none());
        let text = rows(json!([{"a": "x", "b": "y"}, {"a": "z", "b": "w"}]));
        assert!(suggest(&cols(&["a", "b"]), &text).is_none());
        let big: Vec<_> = (0..500).map(|i| rows(json!([{"k": format!("{i}"), "v": i}])).remove(0)).collect();
        assert!(suggest(&cols(&["k", "v"]), &big).is_none());
    }
}
