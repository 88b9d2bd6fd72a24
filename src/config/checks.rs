//! Checks of single values that need more than their type: URLs (HTTPS
//! unless loopback) and cron lines.

use std::net::IpAddr;
use std::str::FromStr;

use reqwest::Url;

/// A URL the OAuth tokens are sent to must be `https://`, except to a
/// loopback host (`127.0.0.0/8`, `::1`, `localhost`: the simulator, a local
/// proxy), where plain `http://` is allowed. The error is the reason, for a
/// message that names the key.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url.trim()).map_err(|e| {
        format!("{url:?} is not a valid URL ({e}); expected e.g. \"https://cliq.zoho.eu\"")
    })?;
    let loopback = is_loopback(&parsed);
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{url:?} is refused: plain http:// would send the OAuth tokens in clear text; \
                 use https:// (http:// is only allowed to a loopback host)"
            ))
        }
        other => {
            return Err(format!(
                "{url:?} is refused: scheme {other}:// is not supported; use https://"
            ))
        }
    }
    if parsed.host().is_none() {
        return Err(format!("{url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{} carries a user name or password; remove it (credentials come from client_secret and refresh_token)",
            redact_userinfo(&parsed)
        ));
    }
    Ok(())
}

/// Loopback: `localhost`, `127.0.0.0/8`, `::1`.
fn is_loopback(url: &Url) -> bool {
    // host_str() is normalised: lower case, IPv4 in dotted quads ("127.1" is
    // "127.0.0.1"), IPv6 in brackets.
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn redact_userinfo(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    format!("{:?}", u.as_str())
}

/// A schedule line: classic 5-field cron (minute first, read as firing at
/// second 0), or 6 or 7 fields with seconds first.
pub fn parse_cron(line: &str) -> Result<cron::Schedule, String> {
    let fields = line.split_whitespace().count();
    let hint = "use 5 fields (\"*/5 * * * *\"), or 6 or 7 with seconds first \
                (\"0 */5 * * * *\"): both mean every 5 minutes";
    if !(5..=7).contains(&fields) {
        return Err(format!(
            "{line:?} is not a valid cron line (it has {fields} fields); {hint}"
        ));
    }
    // The cron crate wants seconds first: a 5-field line fires at second 0.
    let six = if fields == 5 {
        format!("0 {}", line.trim())
    } else {
        line.to_owned()
    };
    cron::Schedule::from_str(&six).map_err(|e| {
        // The cron crate draws a caret under the line; keep the sentence.
        let e = e.to_string();
        let why = e
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("");
        format!("{line:?} is not a valid cron line ({why}); {hint}")
    })
}

/// A schedule line that parses ([`parse_cron`]) and fires, read in `tz`.
pub fn check_cron(line: &str, tz: chrono_tz::Tz) -> Result<(), String> {
    let schedule = parse_cron(line)?;
    // "0 0 0 30 2 *" parses but no date matches: a schedule that silently
    // never runs. Five years covers every rare-but-real line (29 February).
    let horizon = chrono::Utc::now() + chrono::Duration::days(5 * 366);
    match schedule.upcoming(tz).next() {
        Some(next) if next <= horizon => Ok(()),
        _ => Err(format!(
            "{line:?} never fires (no date matches it within five years, e.g. 30 February); \
             check the day and month fields"
        )),
    }
}

/// `[schedule] timezone`: an IANA zone name (`UTC`, `Europe/Berlin`),
/// exactly as the tz database spells it, with a "did you mean" for a typo.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    let suggestion = match super::keys::closest(name, names) {
        Some(near) => format!("; did you mean {near:?}?"),
        None => String::new(),
    };
    Err(format!(
        "{name:?} is not an IANA time zone name (e.g. \"UTC\", \"Europe/Berlin\", \
         \"America/New_York\"){suggestion}"
    ))
}

/// `[log] level`: a level (`info`) or tracing filter directives
/// (`info,cliq_sync::cliq=debug`). Anything else would be read by the
/// filter as a target name and silence every log line, so it is refused.
pub fn check_log_level(level: &str) -> Result<(), String> {
    use tracing_subscriber::filter::LevelFilter;
    let allowed = "off, error, warn, info, debug, trace";
    let bad = |why: String| {
        format!(
            "{level:?} is not a log level or filter ({why}); use one of {allowed}, \
             or directives like \"info,cliq_sync::cliq=debug\""
        )
    };
    if level.trim().is_empty() {
        return Err(bad("it is empty".into()));
    }
    for directive in level.split(',').map(str::trim) {
        let lvl = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if LevelFilter::from_str(lvl).is_err() {
            return Err(bad(format!("{lvl:?} is not a level")));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}
