//! (merged from the client branch)
#[derive(Debug)]
pub struct DataCenter;
impl std::str::FromStr for DataCenter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "us" | "eu" | "in" | "au" | "jp" | "ca" | "sa" | "uk" | "cn" => Ok(DataCenter),
            _ => Err(format!("unknown data centre {s}")),
        }
    }
}
