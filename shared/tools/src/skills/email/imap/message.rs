//! What the skill takes out of FETCH responses, and the JSON it makes of a message's headers.

use imap_proto::{AttributeValue, MessageSection, Response, SectionPath};
use mail_parser::Address;
use serde_json::{Value, json};

/// INTERNALDATE's form (RFC 3501 `date-time`): `05-Dec-2026 10:11:12 +0100`.
const DATE_TIME_FORMAT: &str = "%d-%b-%Y %H:%M:%S %z";

/// The attributes of one FETCH response that the skill reads.
#[derive(Debug, Default)]
pub struct Fetched<'r> {
    pub uid: Option<u32>,
    pub size: Option<u32>,
    pub flags: Vec<String>,
    internal_date: Option<&'r str>,
    pub header: Option<&'r [u8]>,
    pub body: Option<&'r [u8]>,
}

impl Fetched<'_> {
    /// INTERNALDATE as RFC 3339, when the server sent a readable one.
    pub fn received(&self) -> Option<String> {
        self.internal_date
            .and_then(|d| chrono::DateTime::parse_from_str(d.trim(), DATE_TIME_FORMAT).ok())
            .map(|d| d.to_rfc3339())
    }
}

/// Every FETCH response among `responses`.
pub fn fetched<'r>(responses: &'r [Response<'static>]) -> Vec<Fetched<'r>> {
    responses
        .iter()
        .filter_map(|r| match r {
            Response::Fetch(_, attrs) => Some(one(attrs)),
            _ => None,
        })
        .collect()
}

fn one<'r>(attrs: &'r [AttributeValue<'static>]) -> Fetched<'r> {
    let mut f = Fetched::default();
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => f.uid = Some(*u),
            AttributeValue::Rfc822Size(s) => f.size = Some(*s),
            AttributeValue::Flags(flags) => f.flags = flags.iter().map(|x| flag(x)).collect(),
            AttributeValue::InternalDate(d) => f.internal_date = Some(d.as_ref()),
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Header)),
                data: Some(h),
                ..
            }
            | AttributeValue::Rfc822Header(Some(h)) => {
                f.header.get_or_insert(h.as_ref());
            }
            AttributeValue::BodySection {
                section: None,
                data: Some(b),
                ..
            }
            | AttributeValue::Rfc822(Some(b)) => {
                f.body.get_or_insert(b.as_ref());
            }
            _ => {}
        }
    }
    f
}

/// A flag as the skill has always named it: the system flags by name (`Seen`, `Answered`,
/// `Flagged`, `Deleted`, `Draft`, `Recent`, `MayCreate` for `\*`), any other as
/// `Custom("…")`.
fn flag(raw: &str) -> String {
    match raw {
        "\\Seen" => "Seen".into(),
        "\\Answered" => "Answered".into(),
        "\\Flagged" => "Flagged".into(),
        "\\Deleted" => "Deleted".into(),
        "\\Draft" => "Draft".into(),
        "\\Recent" => "Recent".into(),
        "\\*" => "MayCreate".into(),
        other => format!("Custom({other:?})"),
    }
}

fn addresses(a: Option<&Address<'_>>) -> Value {
    let Some(a) = a else { return json!([]) };
    a.iter()
        .map(|addr| {
            json!({
                "name": addr.name(),
                "address": addr.address(),
            })
        })
        .collect()
}

pub fn headers(msg: &mail_parser::Message<'_>) -> Value {
    json!({
        "subject": msg.subject(),
        "from": addresses(msg.from()),
        "to": addresses(msg.to()),
        "cc": addresses(msg.cc()),
        "date": msg.date().map(|d| d.to_rfc3339()),
        "message_id": msg.message_id(),
        "in_reply_to": msg.in_reply_to().as_text(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_attributes_are_picked_out() {
        let (_, r) = Response::parse(
            b"* 3 FETCH (UID 9 RFC822.SIZE 120 FLAGS (\\Seen $Label) \
              INTERNALDATE \" 5-Dec-2026 10:11:12 +0100\" BODY[HEADER] {12}\r\nSubject: x\r\n)\r\n",
        )
        .unwrap();
        let responses = [r.into_owned()];
        let got = fetched(&responses);
        let f = &got[0];
        assert_eq!((f.uid, f.size), (Some(9), Some(120)));
        assert_eq!(f.flags, ["Seen", "Custom(\"$Label\")"]);
        assert_eq!(f.received().as_deref(), Some("2026-12-05T10:11:12+01:00"));
        assert_eq!(f.header, Some(&b"Subject: x\r\n"[..]));
        assert_eq!(f.body, None);
    }
}
