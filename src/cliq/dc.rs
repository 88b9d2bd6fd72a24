//! Zoho data centres: each one has its own Cliq API host and OAuth accounts
//! server (spec "Hosts"). Both can be overridden in config (`base_url`,
//! `accounts_url`); this table only supplies the defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Zoho data centre (`[cliq] data_center`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DataCenter {
    #[default]
    Us,
    Eu,
    In,
    Au,
    Jp,
    Ca,
    Sa,
    Uk,
    Cn,
}

impl DataCenter {
    pub const ALL: [DataCenter; 9] = [
        DataCenter::Us,
        DataCenter::Eu,
        DataCenter::In,
        DataCenter::Au,
        DataCenter::Jp,
        DataCenter::Ca,
        DataCenter::Sa,
        DataCenter::Uk,
        DataCenter::Cn,
    ];

    /// The config spelling (`us`, `eu`, …).
    pub fn code(self) -> &'static str {
        match self {
            DataCenter::Us => "us",
            DataCenter::Eu => "eu",
            DataCenter::In => "in",
            DataCenter::Au => "au",
            DataCenter::Jp => "jp",
            DataCenter::Ca => "ca",
            DataCenter::Sa => "sa",
            DataCenter::Uk => "uk",
            DataCenter::Cn => "cn",
        }
    }

    /// The Cliq API base URL (without `/api/v2`, without trailing slash).
    pub fn api_base(self) -> &'static str {
        match self {
            DataCenter::Us => "https://cliq.zoho.com",
            DataCenter::Eu => "https://cliq.zoho.eu",
            DataCenter::In => "https://cliq.zoho.in",
            DataCenter::Au => "https://cliq.zoho.com.au",
            DataCenter::Jp => "https://cliq.zoho.jp",
            DataCenter::Ca => "https://cliq.zohocloud.ca",
            DataCenter::Sa => "https://cliq.zoho.sa",
            DataCenter::Uk => "https://cliq.zoho.uk",
            DataCenter::Cn => "https://cliq.zoho.com.cn",
        }
    }

    /// The OAuth accounts server (without trailing slash).
    pub fn accounts_base(self) -> &'static str {
        match self {
            DataCenter::Us => "https://accounts.zoho.com",
            DataCenter::Eu => "https://accounts.zoho.eu",
            DataCenter::In => "https://accounts.zoho.in",
            DataCenter::Au => "https://accounts.zoho.com.au",
            DataCenter::Jp => "https://accounts.zoho.jp",
            DataCenter::Ca => "https://accounts.zohocloud.ca",
            DataCenter::Sa => "https://accounts.zoho.sa",
            DataCenter::Uk => "https://accounts.zoho.uk",
            DataCenter::Cn => "https://accounts.zoho.com.cn",
        }
    }
}

impl fmt::Display for DataCenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Parsing failed; the message lists the valid values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown data centre '{given}' (expected one of: us, eu, in, au, jp, ca, sa, uk, cn)")]
pub struct UnknownDataCenter {
    pub given: String,
}

impl FromStr for DataCenter {
    type Err = UnknownDataCenter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        DataCenter::ALL
            .into_iter()
            .find(|dc| dc.code() == t)
            .ok_or_else(|| UnknownDataCenter {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_code_and_round_trips() {
        for dc in DataCenter::ALL {
            assert_eq!(dc.code().parse::<DataCenter>().unwrap(), dc);
            assert_eq!(dc.to_string(), dc.code());
            assert!(dc.api_base().starts_with("https://cliq."));
            assert!(dc.accounts_base().starts_with("https://accounts."));
        }
        assert_eq!(" EU ".parse::<DataCenter>().unwrap(), DataCenter::Eu);
        assert_eq!(DataCenter::Ca.api_base(), "https://cliq.zohocloud.ca");
        assert_eq!(
            DataCenter::Au.accounts_base(),
            "https://accounts.zoho.com.au"
        );
    }

    #[test]
    fn unknown_lists_valid_values() {
        let e = "mars".parse::<DataCenter>().unwrap_err().to_string();
        assert!(e.contains("'mars'"), "{e}");
        for dc in DataCenter::ALL {
            assert!(e.contains(dc.code()), "{e}");
        }
    }

    #[test]
    fn serde_lowercase() {
        let dc: DataCenter = serde_json::from_str("\"jp\"").unwrap();
        assert_eq!(dc, DataCenter::Jp);
    }
}
