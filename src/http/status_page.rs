//! The status page (`GET /`): one small HTML document for a person.
//!
//! Rendering is pure and synchronous: the route gathers a [`PageInfo`] from
//! the server's state and this module only turns it into text, so every
//! formatting rule is unit-tested without a server. The page is
//! self-contained (inline CSS, no scripts, fonts or images, not even a
//! favicon request), reloads itself with a `<meta http-equiv="refresh">`,
//! and turns its table into one card per sequence on narrow screens.
//!
//! The page always shows what anyone may know: whether the instance is
//! ready and why not (the fixed phrases of /readyz), its version, how long
//! it has run, how many sequences it serves, and links to the operator
//! endpoints. The details (the store, whether it answers and since when
//! not, the last good reservation, the store's last error; each sequence,
//! where it stands, the numbers on hand, its rate) only when the route
//! allows them ([`PageInfo::details`]).
//!
//! Stable hooks for tests and scrapers: `#ready` with `data-ready`,
//! `#reasons`, `#uptime` with `data-seconds`, `#sequence-count` with
//! `data-count`; `#store`, `#store-reachable` with `data-reachable`,
//! `#down-since`, `#last-reservation` and `#last-error` with
//! `data-seconds` (an age; empty: never); each sequence is a
//! `<tr class="sequence" data-sequence="NAME">` whose cells have the
//! classes `name`, `next`, `on-hand`, `direction`, `mode`, `used` and
//! `rate`, with the raw values in `data-value`, `data-fraction` and
//! `data-per-second`.

use std::fmt::Write as _;
use std::time::Duration;

/// One sequence as the status page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStatus {
    /// Its name.
    pub name: String,
    /// `"ascending"` or `"descending"`.
    pub direction: &'static str,
    /// `"leased"` or `"strict"`.
    pub mode: &'static str,
    /// Smallest number it issues.
    pub min: i64,
    /// Largest number it issues.
    pub max: i64,
    /// Whether it starts over after its last number.
    pub cycle: bool,
    /// The next number; `None`: a non-cycling sequence ran out.
    pub next: Option<i64>,
    /// Fraction of its range used before it wraps, 0.0..=1.0.
    pub range_used: f64,
    /// Numbers this instance holds, leased and not issued yet (0 for a
    /// strict sequence, which holds none).
    pub on_hand: u64,
    /// Numbers issued per second over the last minute (this instance).
    pub per_second: f64,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PageInfo {
    /// The version, e.g. "0.1.0 (git 1fb058d)".
    pub version: String,
    /// Whether the instance is ready for traffic (as /readyz says).
    pub ready: bool,
    /// Why not, when not: the fixed phrases /readyz gives anyone.
    pub reasons: Vec<String>,
    /// How long the server has been running.
    pub uptime: Duration,
    /// How many sequences it serves.
    pub sequence_count: usize,
    /// How often the page reloads itself, in seconds (0 is taken as 1, so
    /// the page never reloads in a tight loop).
    pub refresh_seconds: u32,
    /// The sequences and the store; `None`: the reader may not see them.
    pub details: Option<Details>,
}

/// What only the admin token or a metrics token may see once tokens are
/// set.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    /// Which store, e.g. "sqlite at ./pez-data/pez.sqlite3" (no secrets).
    pub store: String,
    /// What the store's calls said lately.
    pub health: crate::dispenser::HealthReport,
    /// The sequences, in the order they are shown.
    pub sequences: Vec<SequenceStatus>,
}

/// The page's style. Below 44rem (a phone held upright, a narrow window)
/// each row becomes a card: name and next number across, the other fields
/// two by two. Numbers use tabular figures and may break anywhere, so 19
/// digits never push the page wider than the screen.
const STYLE: &str = r#"
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6470;--line:#d6dae0;--bg:#fff;--card:#f6f7f9;--bar:#e3e6ea;--fill:#2f6fdb;--bad:#b3261e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa3ad;--line:#3a4048;--bg:#15181c;--card:#1d2126;--bar:#2c3239;--fill:#6aa0ff;--bad:#ff8a80}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:72rem;margin:0 auto}
h1{font-size:1.35rem;margin:0 0 .25rem}
.meta{display:flex;flex-wrap:wrap;gap:0 1.25rem;margin:0 0 1rem;color:var(--muted);font-size:.875rem}
.meta span{min-width:0;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:.75rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);padding:.4rem .6rem;border-bottom:2px solid var(--line)}
td{padding:.55rem .6rem;border-bottom:1px solid var(--line);vertical-align:top;font-variant-numeric:tabular-nums}
.next,.range{overflow-wrap:anywhere;word-break:break-all}
.next{font-size:1.1rem;font-weight:600}
.name b{font-size:1.05rem}
.range{display:block;color:var(--muted);font-size:.75rem}
.rate,.on-hand,th.r{text-align:right;white-space:nowrap}
.used{min-width:8rem;white-space:nowrap}
.bar{display:block;height:.4rem;margin-top:.3rem;border-radius:.2rem;background:var(--bar);overflow:hidden}
.bar i{display:block;height:100%;min-width:2px;background:var(--fill)}
.exhausted .bar i{background:var(--bad)}
.badge{display:inline-block;font-size:.75rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em;padding:0 .45rem;border-radius:.6rem;color:var(--bg);background:var(--bad)}
.empty{color:var(--muted)}
.state{display:inline-block;font-weight:700;padding:.1rem .6rem;border-radius:.8rem;color:#fff;background:#1f7a3a}
.state.bad{background:var(--bad)}
#readiness{margin:.25rem 0 .75rem;font-size:1.05rem}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem 1rem;margin:0 0 1rem;font-size:.9rem}
dt{color:var(--muted)}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
.bad-text{color:var(--bad);font-weight:600}
nav{margin:1rem 0 0;font-size:.875rem;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
nav a{color:var(--fill)}
@media (max-width:44rem){
body{padding:.75rem}
dl{grid-template-columns:minmax(0,1fr)}
dd{margin:0 0 .35rem}
thead{display:none}
table,tbody{display:block}
tr{display:block}
tr.sequence{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:.45rem 1rem;background:var(--card);border:1px solid var(--line);border-radius:.6rem;padding:.65rem .85rem;margin:0 0 .75rem}
td{display:block;min-width:0;border:0;padding:0}
td::before{content:attr(data-label);display:block;color:var(--muted);font-size:.7rem;font-weight:600;text-transform:uppercase;letter-spacing:.04em}
td.name,td.next{grid-column:1/-1}
td.name::before{content:none}
.rate,.on-hand{text-align:left}
.used{min-width:0}
}
"#;

/// The complete HTML document.
pub fn render(info: &PageInfo) -> String {
    let sequences = info.details.as_ref().map_or(0, |d| d.sequences.len());
    let mut html = String::with_capacity(4096 + 1024 * sequences);
    let refresh = info.refresh_seconds.max(1);
    let count = info.sequence_count;
    // Writing to a String cannot fail, hence the ignored results below.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\n\
         <title>PEZ status</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>PEZ status</h1>\n\
         <p id=\"readiness\"><span id=\"ready\" data-ready=\"{ready}\" class=\"state{bad}\">{ready_text}</span>\
         {why}</p>\n\
         <p class=\"meta\"><span id=\"version\">PEZ {version}</span>\
         <span id=\"uptime\" data-seconds=\"{uptime_seconds}\">up {uptime}</span>\
         <span id=\"sequence-count\" data-count=\"{count}\">{count} sequence{plural}</span>\
         <span id=\"refresh\" data-seconds=\"{refresh}\">refreshes every {refresh}&nbsp;s</span></p>\n",
        ready = info.ready,
        bad = if info.ready { "" } else { " bad" },
        ready_text = if info.ready { "ready" } else { "not ready" },
        why = if info.reasons.is_empty() {
            String::new()
        } else {
            format!(
                " <span id=\"reasons\">{}</span>",
                escape(&info.reasons.join("; "))
            )
        },
        version = escape(&info.version),
        uptime_seconds = info.uptime.as_secs(),
        uptime = uptime(info.uptime),
        plural = if count == 1 { "" } else { "s" },
    );
    let Some(details) = &info.details else {
        html.push_str(
            "<p class=\"empty\" id=\"details-hidden\">Each sequence and the store's health: \
             for the admin token or one of PEZ_METRICS_TOKENS \
             (<code>Authorization: Bearer</code>).</p>\n",
        );
        links(&mut html);
        html.push_str("</main>\n</body>\n</html>\n");
        return html;
    };
    store_health(&mut html, details);
    html.push_str(
        "<table id=\"sequences\">\n<thead><tr><th scope=\"col\">Sequence</th>\
         <th scope=\"col\">Next</th><th scope=\"col\" class=\"r\">On hand</th>\
         <th scope=\"col\">Direction</th>\
         <th scope=\"col\">Mode</th><th scope=\"col\">Range used</th>\
         <th scope=\"col\" class=\"r\">Issued/s, last minute</th></tr></thead>\n<tbody>\n",
    );
    if details.sequences.is_empty() {
        html.push_str("<tr><td class=\"empty\" colspan=\"7\">No sequences.</td></tr>\n");
    }
    for sequence in &details.sequences {
        row(&mut html, sequence);
    }
    html.push_str("</tbody>\n</table>\n");
    links(&mut html);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

/// The operator endpoints, linked (same origin: nothing is loaded).
fn links(html: &mut String) {
    html.push_str(
        "<nav id=\"links\"><a href=\"/metrics\">/metrics</a>\
         <a href=\"/openapi.json\">/openapi.json</a>\
         <a href=\"/healthz\">/healthz</a><a href=\"/readyz\">/readyz</a>\
         <a href=\"/version\">/version</a></nav>\n",
    );
}

/// The store and what its calls said lately. Each `<dd>` carries its age
/// in whole seconds in `data-seconds` where it has one.
fn store_health(html: &mut String, details: &Details) {
    let health = &details.health;
    let _ = write!(
        html,
        "<dl id=\"store-health\"><dt>Store</dt><dd id=\"store\">{store}</dd>",
        store = escape(&details.store),
    );
    let reachable = health.down_for.is_none();
    let _ = write!(
        html,
        "<dt>Store answering</dt><dd id=\"store-reachable\" data-reachable=\"{reachable}\"{class}>{text}</dd>",
        class = if reachable { "" } else { " class=\"bad-text\"" },
        text = match health.down_for {
            None => "yes".to_owned(),
            Some(down) => format!("no, for {}", uptime(down)),
        },
    );
    if let Some(down) = health.down_for {
        let _ = write!(
            html,
            "<dt>Unreachable since</dt><dd id=\"down-since\" data-seconds=\"{}\">{} ago</dd>",
            down.as_secs(),
            uptime(down)
        );
    }
    let _ = write!(
        html,
        "<dt>Last good reservation</dt>{}",
        match health.last_reservation {
            Some(age) => format!(
                "<dd id=\"last-reservation\" data-seconds=\"{}\">{} ago</dd>",
                age.as_secs(),
                uptime(age)
            ),
            None =>
                "<dd id=\"last-reservation\" data-seconds=\"\">none since the start</dd>".to_owned(),
        }
    );
    let _ = writeln!(
        html,
        "<dt>Last store error</dt>{}</dl>",
        match &health.last_error {
            Some((age, cause)) => format!(
                "<dd id=\"last-error\" data-seconds=\"{}\">{} ago: {}</dd>",
                age.as_secs(),
                uptime(*age),
                escape(cause)
            ),
            None => "<dd id=\"last-error\" data-seconds=\"\">none since the start</dd>".to_owned(),
        }
    );
}

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

/// One sequence's row (a card on a phone).
fn row(html: &mut String, s: &SequenceStatus) {
    let name = escape(&s.name);
    let exhausted = s.next.is_none();
    let _ = write!(
        html,
        "<tr class=\"sequence{state}\" data-sequence=\"{name}\">\
         <td class=\"name\"><b>{name}</b><span class=\"range\">{min}&nbsp;… {max}, {wraps}</span></td>",
        state = if exhausted { " exhausted" } else { "" },
        min = s.min,
        max = s.max,
        wraps = if s.cycle { "cycles" } else { "no cycle" },
    );
    match s.next {
        Some(next) => {
            let _ = write!(
                html,
                "<td class=\"next\" data-label=\"Next\" data-value=\"{next}\">{next}</td>"
            );
        }
        None => html.push_str(
            "<td class=\"next\" data-label=\"Next\" data-value=\"\">\
             <span class=\"badge\">exhausted</span></td>",
        ),
    }
    let _ = write!(
        html,
        "<td class=\"on-hand\" data-label=\"On hand\" data-value=\"{on_hand}\">{grouped}</td>",
        on_hand = s.on_hand,
        grouped = group_thousands(&s.on_hand.to_string()),
    );
    let fraction = clamp_fraction(s.range_used);
    let _ = writeln!(
        html,
        "<td class=\"direction\" data-label=\"Direction\">{direction}</td>\
         <td class=\"mode\" data-label=\"Mode\">{mode}</td>\
         <td class=\"used\" data-label=\"Range used\" data-fraction=\"{fraction}\">{percent}\
         <span class=\"bar\" aria-hidden=\"true\">{fill}</span></td>\
         <td class=\"rate\" data-label=\"Issued/s, last minute\" data-per-second=\"{per_second}\">{rate}</td>\
         </tr>",
        direction = escape(s.direction),
        mode = escape(s.mode),
        percent = escape(&percent(s.range_used)),
        // No fill at all for an unused range; otherwise at least a sliver
        // (min-width in the CSS), so "< 0.01%" is visibly not nothing.
        fill = if fraction > 0.0 {
            format!("<i style=\"width:{:.4}%\"></i>", fraction * 100.0)
        } else {
            String::new()
        },
        per_second = finite_or_zero(s.per_second),
        rate = escape(&rate(s.per_second)),
    );
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

fn finite_or_zero(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

fn clamp_fraction(fraction: f64) -> f64 {
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
fn group_thousands(digits: &str) -> String {
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

    fn sequence(name: &str, next: Option<i64>, used: f64, per_second: f64) -> SequenceStatus {
        SequenceStatus {
            name: name.to_owned(),
            direction: "ascending",
            mode: "leased",
            min: 1,
            max: i64::MAX,
            cycle: true,
            next,
            range_used: used,
            on_hand: 700,
            per_second,
        }
    }

    fn page(sequences: Vec<SequenceStatus>) -> PageInfo {
        PageInfo {
            version: "0.1.0 (git 1fb058d)".to_owned(),
            ready: true,
            reasons: Vec::new(),
            uptime: Duration::from_secs(3 * 3600 + 12 * 60 + 5),
            sequence_count: sequences.len(),
            refresh_seconds: 5,
            details: Some(Details {
                store: "sqlite at ./pez-data/pez.sqlite3".to_owned(),
                health: crate::dispenser::HealthReport {
                    last_answer: Some(Duration::from_secs(1)),
                    last_reservation: Some(Duration::from_secs(42)),
                    ..Default::default()
                },
                sequences,
            }),
        }
    }

    fn details(info: &mut PageInfo) -> &mut Details {
        info.details.as_mut().expect("details")
    }

    #[test]
    fn without_details_the_page_says_only_what_anyone_may_know() {
        let mut info = page(vec![sequence("secret", Some(42), 0.5, 3.0)]);
        info.details = None;
        info.ready = false;
        let html = render(&info);
        assert!(html.contains(
            "<span id=\"ready\" data-ready=\"false\" class=\"state bad\">not ready</span>"
        ));
        assert!(html.contains("PEZ 0.1.0 (git 1fb058d)"));
        assert!(html.contains("data-seconds=\"11525\">up 3&nbsp;h 12&nbsp;min"));
        assert!(html.contains("data-count=\"1\">1 sequence</span>"));
        for detail in ["secret", "42", "sqlite", "data-sequence", "<table"] {
            assert!(!html.contains(detail), "{detail:?} in {html}");
        }
        assert!(html.contains("PEZ_METRICS_TOKENS"));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn uptime_shows_its_two_largest_units() {
        let s = Duration::from_secs;
        assert_eq!(uptime(s(0)), "0&nbsp;s");
        assert_eq!(uptime(s(59)), "59&nbsp;s");
        assert_eq!(uptime(s(303)), "5&nbsp;min 3&nbsp;s");
        assert_eq!(uptime(s(3600)), "1&nbsp;h 0&nbsp;min");
        assert_eq!(uptime(s(4 * 86_400 + 7 * 3600 + 59)), "4&nbsp;d 7&nbsp;h");
    }

    /// The `<tr>` of sequence `name`, up to its `</tr>`.
    fn row_of<'a>(html: &'a str, name: &str) -> &'a str {
        let start = html
            .find(&format!("data-sequence=\"{name}\""))
            .unwrap_or_else(|| panic!("no row for {name} in {html}"));
        let end = start + html[start..].find("</tr>").expect("row ends");
        &html[start..end]
    }

    /// The text of the `<td class="class">` in `row`, tags removed and
    /// entities decoded.
    fn cell(row: &str, class: &str) -> String {
        let start = row
            .find(&format!("<td class=\"{class}\""))
            .unwrap_or_else(|| panic!("no .{class} in {row}"));
        let open = start + row[start..].find('>').expect("tag ends") + 1;
        let close = open + row[open..].find("</td>").expect("cell ends");
        let mut text = String::new();
        let mut in_tag = false;
        for c in row[open..close].chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.replace("&nbsp;", "\u{a0}")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
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
    fn everything_inserted_into_the_page_is_escaped() {
        let mut info = page(vec![SequenceStatus {
            direction: "<i>up</i>",
            mode: "\"strict\"",
            ..sequence("a<b>&\"c'", Some(1), 0.0, 0.0)
        }]);
        info.version = "<script>alert(1)</script>".to_owned();
        details(&mut info).store = "postgresql at \"db\" & <host>".to_owned();
        let html = render(&info);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("postgresql at &quot;db&quot; &amp; &lt;host&gt;"));
        assert!(html.contains("data-sequence=\"a&lt;b&gt;&amp;&quot;c&#39;\""));
        assert!(html.contains("<b>a&lt;b&gt;&amp;&quot;c&#39;</b>"));
        assert!(html.contains("&lt;i&gt;up&lt;/i&gt;"));
        assert!(html.contains("&quot;strict&quot;"));
        assert!(!html.contains("<i>up"));
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

    #[test]
    fn every_sequence_appears_with_each_of_its_fields() {
        let html = render(&page(vec![
            sequence("forward", Some(301), 300.0 / i64::MAX as f64, 5.0),
            SequenceStatus {
                direction: "descending",
                ..sequence("reverse", Some(i64::MAX - 200), 0.0, 12_345.0)
            },
            SequenceStatus {
                mode: "strict",
                min: 10,
                max: 20,
                ..sequence("orders", Some(15), 0.5, 0.0)
            },
        ]));
        let forward = row_of(&html, "forward");
        assert_eq!(cell(forward, "next"), "301");
        assert!(forward.contains("data-value=\"301\""));
        assert_eq!(cell(forward, "direction"), "ascending");
        assert_eq!(cell(forward, "mode"), "leased");
        assert_eq!(cell(forward, "used"), "< 0.01%");
        assert_eq!(cell(forward, "rate"), "5/s");
        assert!(forward.contains("data-per-second=\"5\""));
        assert!(cell(forward, "name").contains("9223372036854775807"));

        let reverse = row_of(&html, "reverse");
        assert_eq!(cell(reverse, "next"), (i64::MAX - 200).to_string());
        assert_eq!(cell(reverse, "direction"), "descending");
        assert_eq!(cell(reverse, "used"), "0%");
        assert!(
            !reverse.contains("<i style"),
            "no fill when nothing is used"
        );
        assert_eq!(cell(reverse, "rate"), "12,345/s");

        let orders = row_of(&html, "orders");
        assert_eq!(cell(orders, "next"), "15");
        assert_eq!(cell(orders, "mode"), "strict");
        assert_eq!(cell(orders, "used"), "50%");
        assert!(orders.contains("width:50.0000%"));
        assert_eq!(cell(orders, "name"), "orders10\u{a0}… 20, cycles");
        assert_eq!(cell(orders, "rate"), "0/s");

        // In the order given.
        let at = |name: &str| html.find(&format!("data-sequence=\"{name}\"")).unwrap();
        assert!(at("forward") < at("reverse") && at("reverse") < at("orders"));
    }

    #[test]
    fn an_exhausted_sequence_is_marked_as_such() {
        let html = render(&page(vec![
            SequenceStatus {
                cycle: false,
                ..sequence("done", None, 1.0, 0.0)
            },
            sequence("live", Some(7), 0.1, 0.0),
        ]));
        let done = row_of(&html, "done");
        assert!(done.starts_with("data-sequence"));
        assert!(html.contains("<tr class=\"sequence exhausted\" data-sequence=\"done\""));
        assert_eq!(cell(done, "next"), "exhausted");
        assert_eq!(cell(done, "used"), "100%");
        assert!(cell(done, "name").ends_with("no cycle"));
        assert!(html.contains("<tr class=\"sequence\" data-sequence=\"live\""));
        assert!(!row_of(&html, "live").contains("exhausted"));
    }

    #[test]
    fn the_page_is_a_complete_document_that_refreshes_itself() {
        let html = render(&page(vec![sequence("forward", Some(1), 0.0, 0.0)]));
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(html.contains("<title>PEZ status</title>"));
        assert!(html.contains("PEZ 0.1.0 (git 1fb058d)"));
        assert!(html.contains("sqlite at ./pez-data/pez.sqlite3"));
        assert!(html.contains("refreshes every 5&nbsp;s"));
        // Balanced table markup.
        assert_eq!(html.matches("<tr").count(), html.matches("</tr>").count());
        assert_eq!(html.matches("<td").count(), html.matches("</td>").count());
    }

    #[test]
    fn a_refresh_of_zero_seconds_is_taken_as_one() {
        let mut info = page(vec![]);
        info.refresh_seconds = 0;
        let html = render(&info);
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"1\">"));
        assert!(html.contains("No sequences."));
    }

    #[test]
    fn the_page_loads_nothing_from_anywhere() {
        let html = render(&page(vec![
            sequence("forward", Some(1), 0.3, 2.0),
            sequence("gone", None, 1.0, 0.0),
        ]))
        .to_lowercase();
        for external in [
            "http://", "https://", "//", "src=", "<script", "@import", "url(", "<img", "<iframe",
            "<object", "<embed",
        ] {
            assert!(!html.contains(external), "found {external:?}");
        }
        // The links are the empty data: favicon, which stops browsers
        // asking for /favicon.ico, and the operator endpoints of this same
        // server (followed, never loaded).
        assert!(html.contains("<link rel=\"icon\" href=\"data:,\">"));
        for href in html.split("href=\"").skip(1) {
            let target = &href[..href.find('"').expect("quoted")];
            assert!(
                target == "data:," || (target.starts_with('/') && !target.starts_with("//")),
                "{target}"
            );
        }
    }

    #[test]
    fn a_store_that_is_out_shows_why_since_when_and_its_last_error() {
        let mut info = page(vec![sequence("forward", Some(9), 0.0, 0.0)]);
        info.ready = false;
        info.reasons = vec!["store unavailable".to_owned()];
        details(&mut info).health = crate::dispenser::HealthReport {
            down_for: Some(Duration::from_secs(75)),
            last_answer: Some(Duration::from_secs(1)),
            last_reservation: Some(Duration::from_secs(80)),
            last_error: Some((Duration::from_secs(2), "database <is> locked".to_owned())),
        };
        let html = render(&info);
        assert!(html.contains(
            "<span id=\"ready\" data-ready=\"false\" class=\"state bad\">not ready</span> \
             <span id=\"reasons\">store unavailable</span>"
        ));
        assert!(html.contains("data-reachable=\"false\""));
        assert!(html.contains("no, for 1&nbsp;min 15&nbsp;s"));
        assert!(html.contains("id=\"down-since\" data-seconds=\"75\""));
        assert!(html.contains("id=\"last-reservation\" data-seconds=\"80\""));
        assert!(html.contains(
            "id=\"last-error\" data-seconds=\"2\">2&nbsp;s ago: database &lt;is&gt; locked"
        ));
    }

    #[test]
    fn a_healthy_store_shows_no_outage_and_the_page_says_what_each_column_counts() {
        let html = render(&page(vec![sequence("forward", Some(9), 0.0, 2.0)]));
        assert!(html.contains("data-ready=\"true\" class=\"state\">ready</span></p>"));
        assert!(html.contains("data-reachable=\"true\">yes</dd>"));
        assert!(!html.contains("down-since"));
        assert!(html.contains("none since the start"));
        assert!(html.contains("Issued/s, last minute"));
        assert!(!html.contains("Last minute"));
        let forward = row_of(&html, "forward");
        assert_eq!(cell(forward, "on-hand"), "700");
        for link in ["/metrics", "/openapi.json", "/healthz", "/readyz"] {
            assert!(html.contains(&format!("<a href=\"{link}\">")), "{link}");
        }
    }

    #[test]
    fn without_details_the_store_and_its_errors_stay_hidden_but_links_and_readiness_show() {
        let mut info = page(vec![]);
        details(&mut info).health.last_error = Some((
            Duration::from_secs(1),
            "password authentication failed".into(),
        ));
        info.details = None;
        info.ready = false;
        info.reasons = vec!["store unavailable".to_owned()];
        let html = render(&info);
        assert!(html.contains("store unavailable"));
        assert!(!html.contains("password"));
        assert!(!html.contains("store-health"));
        assert!(html.contains("<a href=\"/readyz\">"));
    }
}
