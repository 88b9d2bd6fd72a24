//! The strict half of CSV reading: quotes.
//!
//! The `csv` crate is lenient about quotes: an unterminated quote at the end
//! of a file is read as a value, and a stray quote in the middle swallows the
//! following rows into one value until the next quote. Both look like a valid
//! file with fewer people. So before the crate sees the bytes, this scan
//! walks the RFC 4180 quote state itself and refuses, naming the line and
//! column where the quoted field starts:
//! * a quote still open at the end of the file (a truncated export);
//! * a quoted field that crosses a line break (HR values are single-line,
//!   so this is either a stray quote or a value we would refuse anyway);
//! * text after a closing quote, or a quote inside an unquoted field.

/// Where the quoting goes wrong: the 1-based line and the 0-based field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteError {
    pub line: u64,
    pub field: usize,
    pub message: String,
}

/// Scan `bytes` (the CSV, BOM removed) for broken quoting.
pub fn check(bytes: &[u8]) -> Result<(), QuoteError> {
    let mut s = Scan::default();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        match s.open {
            // A doubled quote inside quotes is one literal quote.
            Some(_) if b == b'"' && bytes.get(i) == Some(&b'"') => i += 1,
            Some(at) => s.quoted(b, at)?,
            None => s.unquoted(b)?,
        }
    }
    match s.open {
        Some((line, field)) => Err(QuoteError {
            line,
            field,
            message: "unterminated quote: the quoted field that starts here runs to the end of \
                      the file (a truncated or half-written export?)"
                .into(),
        }),
        None => Ok(()),
    }
}

/// The scan's state between bytes.
struct Scan {
    line: u64,
    field: usize,
    at_field_start: bool,
    /// (line, field) of the open quote, while inside one.
    open: Option<(u64, usize)>,
    after_close: bool,
}

impl Default for Scan {
    fn default() -> Self {
        Self {
            line: 1,
            field: 0,
            at_field_start: true,
            open: None,
            after_close: false,
        }
    }
}

impl Scan {
    /// A byte inside quotes (not the first of a doubled quote).
    fn quoted(&mut self, b: u8, (line, field): (u64, usize)) -> Result<(), QuoteError> {
        match b {
            b'"' => {
                self.open = None;
                self.after_close = true;
                Ok(())
            }
            b'\n' => Err(QuoteError {
                line,
                field,
                message: "a quoted field does not end on its line: an unterminated quote \
                          (it would swallow the following rows), or a line break inside a \
                          value, which HR values may not contain"
                    .into(),
            }),
            _ => Ok(()),
        }
    }

    /// A byte outside quotes.
    fn unquoted(&mut self, b: u8) -> Result<(), QuoteError> {
        match b {
            b',' | b'\n' => {
                if b == b'\n' {
                    self.line += 1;
                    self.field = 0;
                } else {
                    self.field += 1;
                }
                self.at_field_start = true;
                self.after_close = false;
            }
            b'\r' => {}
            b'"' if self.at_field_start => {
                self.open = Some((self.line, self.field));
                self.at_field_start = false;
            }
            _ if self.after_close || b == b'"' => {
                let message = if self.after_close {
                    "text after the closing quote of a quoted field: quote the whole field and \
                     double every quote inside it (\"\")"
                } else {
                    "a quote inside an unquoted field: quote the whole field and double every \
                     quote inside it (\"\")"
                };
                return Err(QuoteError {
                    line: self.line,
                    field: self.field,
                    message: message.into(),
                });
            }
            _ => self.at_field_start = false,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_states() {
        assert!(check(b"a,b\n\"x, \"\"y\"\"\",z\r\n\"\",\n").is_ok());
        let e = check(b"a,b\nx,\"y").unwrap_err();
        assert_eq!((e.line, e.field), (2, 1));
        assert!(e.message.contains("unterminated"));
        let e = check(b"a,b\nx,\"y\nz,w\n").unwrap_err();
        assert_eq!((e.line, e.field), (2, 1));
        let e = check(b"a,b\nx,\"y\"z\n").unwrap_err();
        assert!(e.message.contains("after the closing quote"), "{e:?}");
        let e = check(b"a,b\nx,5'10\"\n").unwrap_err();
        assert!(e.message.contains("inside an unquoted"), "{e:?}");
    }
}
