//! The page as HTML: one self-contained document, no scripts, fonts or
//! images, written from a [`PageInfo`].

use super::model::{Details, PageInfo, SequenceStatus};
use super::text::{clamp_fraction, escape, finite_or_zero, group_thousands, percent, rate, uptime};
use std::fmt::Write as _;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
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
