//! Reading lbd's Prometheus text in tests.

/// The value of one `series` (name with its labels, exactly as lbd prints
/// it) in a `/metrics` page, or a panic showing the page.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{series}: {e}"))
}
