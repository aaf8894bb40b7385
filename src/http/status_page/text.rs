//! How the page writes numbers, ages and text for a person: pure
//! functions, each unit-tested.

use std::time::Duration;

/// How long the server has run, in its two largest units: "42 s",
/// "5 min 3 s", "3 h 12 min", "4 d 7 h".
pub fn uptime(running: Duration) -> String {
    let seconds = running.as_secs();
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    if days > 0 {
        format!("{days}&nbsp;d {hours}&nbsp;h")
    } else if hours > 0 {
        format!("{hours}&nbsp;h {minutes}&nbsp;min")
    } else if minutes > 0 {
        format!("{minutes}&nbsp;min {}&nbsp;s", seconds % 60)
    } else {
        format!("{seconds}&nbsp;s")
    }
}

/// `text` made safe for HTML text and double- or single-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The fraction of a range used, as a percentage a person reads correctly:
/// never "0%" for something used nor "100%" for something not quite full.
///
/// `0` → "0%", `1e-15` → "< 0.01%", `0.4213` → "42.13%", `0.5` → "50%",
/// `0.99999` → "> 99.99%", `1` → "100%". Out-of-range values are clamped;
/// NaN shows as "?".
pub fn percent(fraction: f64) -> String {
    if fraction.is_nan() {
        return "?".to_owned();
    }
    let p = fraction.clamp(0.0, 1.0) * 100.0;
    if p == 0.0 {
        "0%".to_owned()
    } else if p < 0.01 {
        "< 0.01%".to_owned()
    } else if p >= 100.0 {
        "100%".to_owned()
    } else if p > 99.99 {
        "> 99.99%".to_owned()
    } else {
        format!("{}%", trim_zeros(&format!("{p:.2}")))
    }
}

/// Numbers per second, as "0/s", "< 0.01/s", "0.02/s", "3.5/s" or
/// "12,345/s": two significant digits below ten, whole numbers with
/// thousands separators above. Negative or non-finite rates show as "0/s".
pub fn rate(per_second: f64) -> String {
    let r = finite_or_zero(per_second);
    let text = if r == 0.0 {
        "0".to_owned()
    } else if r < 0.01 {
        "< 0.01".to_owned()
    } else if r < 1.0 {
        trim_zeros(&format!("{r:.2}"))
    } else if r < 9.95 {
        // 9.95 and up would print as "10.0": that belongs to the next branch.
        trim_zeros(&format!("{r:.1}"))
    } else {
        group_thousands(&format!("{r:.0}"))
    };
    format!("{text}/s")
}

pub(super) fn finite_or_zero(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

pub(super) fn clamp_fraction(fraction: f64) -> f64 {
    if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    }
}

/// "42.10" → "42.1", "50.00" → "50"; text without a point is unchanged.
fn trim_zeros(number: &str) -> String {
    if number.contains('.') {
        number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        number.to_owned()
    }
}

/// "1234567" → "1,234,567" (digits only).
pub(super) fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_shows_its_two_largest_units() {
        let s = Duration::from_secs;
        assert_eq!(uptime(s(0)), "0&nbsp;s");
        assert_eq!(uptime(s(59)), "59&nbsp;s");
        assert_eq!(uptime(s(303)), "5&nbsp;min 3&nbsp;s");
        assert_eq!(uptime(s(3600)), "1&nbsp;h 0&nbsp;min");
        assert_eq!(uptime(s(4 * 86_400 + 7 * 3600 + 59)), "4&nbsp;d 7&nbsp;h");
    }

    #[test]
    fn escape_replaces_every_character_html_gives_meaning_to() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("forward_2-b"), "forward_2-b");
        assert_eq!(escape("ünïcode ✓"), "ünïcode ✓");
    }

    #[test]
    fn percent_never_rounds_a_used_range_to_zero_or_a_partial_one_to_full() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(1e-15), "< 0.01%");
        assert_eq!(percent(f64::MIN_POSITIVE), "< 0.01%");
        // 300 numbers of forward's 2^63-1.
        assert_eq!(percent(300.0 / i64::MAX as f64), "< 0.01%");
        assert_eq!(percent(0.000_099), "< 0.01%");
        assert_eq!(percent(0.0001), "0.01%");
        assert_eq!(percent(0.001_234), "0.12%");
        assert_eq!(percent(0.005), "0.5%");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(percent(0.421_37), "42.14%");
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(0.9999), "99.99%");
        assert_eq!(percent(0.999_95), "> 99.99%");
        assert_eq!(percent(1.0 - 1e-15), "> 99.99%");
        assert_eq!(percent(1.0), "100%");
    }

    #[test]
    fn percent_clamps_values_outside_zero_to_one() {
        assert_eq!(percent(-0.5), "0%");
        assert_eq!(percent(1.5), "100%");
        assert_eq!(percent(f64::INFINITY), "100%");
        assert_eq!(percent(f64::NEG_INFINITY), "0%");
        assert_eq!(percent(f64::NAN), "?");
    }

    #[test]
    fn rates_are_short_and_never_show_a_trickle_as_zero() {
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(rate(-3.0), "0/s");
        assert_eq!(rate(f64::NAN), "0/s");
        assert_eq!(rate(f64::INFINITY), "0/s");
        assert_eq!(rate(0.001), "< 0.01/s");
        // One number in the last minute.
        assert_eq!(rate(1.0 / 60.0), "0.02/s");
        assert_eq!(rate(0.5), "0.5/s");
        assert_eq!(rate(1.0), "1/s");
        assert_eq!(rate(3.46), "3.5/s");
        assert_eq!(rate(9.94), "9.9/s");
        assert_eq!(rate(9.96), "10/s");
        assert_eq!(rate(999.4), "999/s");
        assert_eq!(rate(1000.0), "1,000/s");
        assert_eq!(rate(12_345.4), "12,345/s");
        assert_eq!(rate(11_568_945.0), "11,568,945/s");
    }

    #[test]
    fn thousands_are_grouped_from_the_right() {
        assert_eq!(group_thousands("1"), "1");
        assert_eq!(group_thousands("123"), "123");
        assert_eq!(group_thousands("1234"), "1,234");
        assert_eq!(group_thousands("123456"), "123,456");
        assert_eq!(group_thousands("1234567"), "1,234,567");
    }
}
