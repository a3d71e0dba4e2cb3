//! Declarative HTTP tools: a call template (`{{param}}` placeholders) filled from the tool's
//! validated input. Values in the URL are percent-encoded and placeholders may only follow the
//! origin, so input can change the path and query but never the host; the request then goes
//! through the outbound guard like every other tool request.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::manifest::HttpTemplate;
use crate::error::ToolError;
use crate::net::OutboundRequest;

/// Everything but the unreserved characters is encoded in a substituted value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Replaces every `{{name}}` in `s` using `value_of` (`None`: a name the input lacks).
fn substitute(s: &str, input: &Map<String, Value>, encode: bool) -> Result<String, ToolError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ToolError::Failed("unclosed {{ in the plugin's template".into()))?;
        let name = after[..end].trim();
        let value = input.get(name).map(text_of).unwrap_or_default();
        if encode {
            out.extend(utf8_percent_encode(&value, COMPONENT));
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn fill_body(v: &Value, input: &Map<String, Value>) -> Result<Value, ToolError> {
    Ok(match v {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
                input
                    .get(t[2..t.len() - 2].trim())
                    .cloned()
                    .unwrap_or(Value::Null)
            } else {
                Value::String(substitute(s, input, false)?)
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| fill_body(x, input))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), fill_body(x, input)?)))
                .collect::<Result<_, ToolError>>()?,
        ),
        other => other.clone(),
    })
}

/// The request a template makes for `input`.
pub fn render(t: &HttpTemplate, input: &Value) -> Result<OutboundRequest, ToolError> {
    let empty = Map::new();
    let map = input.as_object().unwrap_or(&empty);
    let method = Method::from_bytes(t.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ToolError::Failed(format!("invalid method '{}'", t.method)))?;
    let fixed = t.url.split("{{").next().unwrap_or("");
    let origin = url::Url::parse(fixed)
        .map_err(|e| ToolError::Failed(format!("invalid URL template: {e}")))?
        .origin();
    let url = url::Url::parse(&substitute(&t.url, map, true)?)
        .map_err(|e| ToolError::InvalidInput(format!("the filled URL is invalid: {e}")))?;
    if url.origin() != origin {
        return Err(ToolError::Refused(
            "the input would change the template's host".into(),
        ));
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &t.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ToolError::Failed(format!("invalid header name '{k}'")))?;
        let value = HeaderValue::from_str(&substitute(v, map, false)?)
            .map_err(|_| ToolError::InvalidInput(format!("invalid value for header '{k}'")))?;
        headers.insert(name, value);
    }
    let mut req = OutboundRequest::new(method, url);
    if let Some(body) = &t.body {
        req = req.json(&fill_body(body, map)?);
    }
    for (k, v) in headers.iter() {
        req.headers.insert(k.clone(), v.clone());
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_encoded_and_cannot_change_the_host() {
        let t = HttpTemplate {
            method: "POST".into(),
            url: "https://api.example.com/items/{{id}}?q={{q}}".into(),
            headers: [("X-Tag".to_owned(), "t-{{tag}}".to_owned())].into(),
            body: Some(json!({"n": "{{n}}", "s": "v={{q}}"})),
        };
        let r = render(&t, &json!({"id": "a/b@c", "q": "x y", "tag": "z", "n": 3})).unwrap();
        assert_eq!(
            r.url.as_str(),
            "https://api.example.com/items/a%2Fb%40c?q=x%20y"
        );
        assert_eq!(r.headers["x-tag"], "t-z");
        let body: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
        assert_eq!(body, json!({"n": 3, "s": "v=x y"}));
        let evil = HttpTemplate {
            url: "https://{{h}}/x".into(),
            ..t.clone()
        };
        assert!(render(&evil, &json!({"h": "169.254.169.254"})).is_err());
    }
}
