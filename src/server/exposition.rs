//! Which exposition format `/metrics` answers in. prometheus-client writes
//! OpenMetrics; a scraper that asks for the classic Prometheus text format
//! (`Accept: text/plain;version=0.0.4`, e.g. Prometheus with
//! `scrape_protocols: [PrometheusText0.0.4]`, older agents, or a person
//! with curl) gets that instead: the two differ in ways a strict parser
//! notices (a counter's TYPE line names `x`, its samples `x_total`;
//! `# EOF`; `# UNIT`; the `info` and `unknown` types).

/// OpenMetrics 1.0, what prometheus-client writes.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    /// From an `Accept` header: the text format when the client rates
    /// `text/plain` above `application/openmetrics-text` (q-values);
    /// OpenMetrics otherwise, also without a header or with only `*/*`
    /// (what this endpoint always answered).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut om, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" => text = text.max(q),
                _ => {}
            }
        }
        if text > om {
            Format::PrometheusText
        } else {
            Format::OpenMetrics
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS,
            Format::PrometheusText => PROMETHEUS_TEXT,
        }
    }
}

/// Rewrite prometheus-client's OpenMetrics output as Prometheus text 0.0.4.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP precedes TYPE, but only TYPE says whether the name changes.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = text_family(name, kind);
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            // Not part of the text format.
        } else {
            // Exemplars (" # {...}") do not exist in the text format.
            let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

/// The text format's family name and type for an OpenMetrics family.
fn text_family(name: &str, kind: &str) -> (String, &'static str) {
    match kind {
        "counter" if name.ends_with("_total") => (name.to_owned(), "counter"),
        "counter" => (format!("{name}_total"), "counter"),
        "info" => (format!("{name}_info"), "gauge"),
        "gauge" => (name.to_owned(), "gauge"),
        "histogram" => (name.to_owned(), "histogram"),
        "summary" => (name.to_owned(), "summary"),
        _ => (name.to_owned(), "untyped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_default_accept_gets_openmetrics() {
        let accept = "application/openmetrics-text;version=1.0.0;q=0.5,\
            application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::negotiate(Some(accept)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::OpenMetrics);
    }

    #[test]
    fn a_text_plain_preference_gets_the_text_format() {
        for accept in [
            "text/plain",
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text;q=0.2, text/plain; q=0.9",
        ] {
            assert_eq!(
                Format::negotiate(Some(accept)),
                Format::PrometheusText,
                "{accept}"
            );
        }
    }

    #[test]
    fn openmetrics_families_become_text_families() {
        let om = "# HELP a_requests Requests sent.\n# TYPE a_requests counter\n\
                  a_requests_total{endpoint=\"x\"} 3 # {trace=\"1\"} 1.0\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_size Size.\n# TYPE a_size gauge\n# UNIT a_size bytes\na_size 7\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_requests_total Requests sent.\n# TYPE a_requests_total counter\n\
             a_requests_total{endpoint=\"x\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # HELP a_size Size.\n# TYPE a_size gauge\na_size 7\n"
        );
    }
}
