//! The Prometheus HTTP API (`/api/v1/...`) as the tools call it: the requests, the answer
//! shapes (`{"status": "success", "data": ..., "warnings": [...]}`), and Prometheus's own
//! errors (`{"errorType": "bad_data", "error": "1:5: parse error: ..."}`) turned into
//! messages that keep its words and the position in the query.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::{HttpClient, HttpError};
use crate::series::{Labels, Series, parse_value};
use crate::time::unix_seconds;

/// The envelope of every answer.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: T,
    #[serde(default)]
    warnings: Vec<String>,
}

/// A query's result.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// An instant vector: one point per series.
    Vector(Vec<Series>),
    /// A range vector (a range query, or an instant query of `x[5m]`).
    Matrix(Vec<Series>),
    /// One number at one time.
    Scalar(f64, f64),
    /// One string at one time.
    String(f64, String),
}

#[derive(Debug, Deserialize)]
struct RawData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Debug, Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
}

impl RawSample {
    fn into_series(self) -> Series {
        let points = match (self.value, self.values) {
            (_, Some(values)) => values
                .into_iter()
                .map(|(t, v)| (t, parse_value(&v)))
                .collect(),
            (Some((t, v)), None) => vec![(t, parse_value(&v))],
            (None, None) => Vec::new(),
        };
        Series {
            labels: self.metric,
            points,
        }
    }
}

fn decode_result(data: RawData) -> Result<QueryResult, String> {
    let bad = |e: serde_json::Error| {
        format!(
            "Prometheus answered a {} this tool cannot read: {e}",
            data.result_type
        )
    };
    Ok(match data.result_type.as_str() {
        "vector" | "matrix" => {
            let samples: Vec<RawSample> =
                serde_json::from_value(data.result.clone()).map_err(bad)?;
            let series = samples.into_iter().map(RawSample::into_series).collect();
            if data.result_type == "vector" {
                QueryResult::Vector(series)
            } else {
                QueryResult::Matrix(series)
            }
        }
        "scalar" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result.clone()).map_err(bad)?;
            QueryResult::Scalar(t, parse_value(&v))
        }
        "string" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result.clone()).map_err(bad)?;
            QueryResult::String(t, v)
        }
        other => {
            return Err(format!(
                "Prometheus answered an unknown result type `{other}`"
            ));
        }
    })
}

/// Why a call failed: Prometheus's own words where it gave them.
#[derive(Debug)]
pub enum Failure {
    /// The query does not parse or is invalid; Prometheus's message, with the position.
    BadQuery(String),
    /// Anything else, said fully.
    Other(String),
}

/// The Prometheus API of one link.
pub struct Api {
    pub http: HttpClient,
}

/// Seconds of Prometheus's own query `timeout`: a little under the call's, so its clear
/// message ("query timed out in expression evaluation") comes before the call is abandoned.
fn server_timeout(timeout: Duration) -> String {
    let margin = (timeout / 10).min(Duration::from_secs(2));
    format!("{}s", timeout.saturating_sub(margin).as_secs().max(1))
}

impl Api {
    async fn data<T: DeserializeOwned>(
        &self,
        request: crate::http::HttpRequest<'_>,
    ) -> Result<(T, Vec<String>), Failure> {
        let envelope: Envelope<T> = request.fetch().await.map_err(|e| self.failure(e))?;
        Ok((envelope.data, envelope.warnings))
    }

    fn failure(&self, err: HttpError) -> Failure {
        let kind = err
            .body()
            .and_then(|b| b.get("errorType"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let said = err
            .body()
            .and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map(|s| self.http.scrub(s));
        match (err.status(), kind.as_str(), said) {
            (Some(400), "bad_data", Some(said)) => Failure::BadQuery(said),
            (Some(422), _, Some(said)) => Failure::Other(format!(
                "Prometheus could not evaluate the query: {said}; narrow it (fewer series with \
                 label matchers, a shorter range or a larger step)"
            )),
            (Some(503), "timeout", Some(said)) | (Some(503), "canceled", Some(said)) => {
                Failure::Other(format!(
                    "the query ran out of time in Prometheus ({said}); narrow it (label \
                     matchers, a shorter range, a larger step)"
                ))
            }
            _ => Failure::Other(err.to_string()),
        }
    }

    /// `/api/v1/query` at `time`.
    pub async fn query(
        &self,
        query: &str,
        time: Timestamp,
        timeout: Duration,
    ) -> Result<(QueryResult, Vec<String>), Failure> {
        let form = [
            ("query", query.to_owned()),
            ("time", unix_seconds(time)),
            ("timeout", server_timeout(timeout)),
        ];
        let request = self.http.post("/api/v1/query").form(&form).timeout(timeout);
        let (data, warnings) = self.data::<RawData>(request).await?;
        Ok((decode_result(data).map_err(Failure::Other)?, warnings))
    }

    /// `/api/v1/query_range` over `[start, end]` at `step`.
    pub async fn query_range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
        timeout: Duration,
    ) -> Result<(Vec<Series>, Vec<String>), Failure> {
        let form = [
            ("query", query.to_owned()),
            ("start", unix_seconds(start)),
            ("end", unix_seconds(end)),
            ("step", format!("{}", step.as_secs_f64())),
            ("timeout", server_timeout(timeout)),
        ];
        let request = self
            .http
            .post("/api/v1/query_range")
            .form(&form)
            .timeout(timeout);
        let (data, warnings) = self.data::<RawData>(request).await?;
        match decode_result(data).map_err(Failure::Other)? {
            QueryResult::Matrix(series) => Ok((series, warnings)),
            other => Err(Failure::Other(format!(
                "Prometheus answered a range query with {other:?} instead of a matrix"
            ))),
        }
    }

    /// A `GET` of `path` with `query` parameters, as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: reqwest::Url,
        query: &[(&str, String)],
        timeout: Duration,
    ) -> Result<T, Failure> {
        let request = self
            .http
            .request(reqwest::Method::GET, url)
            .query(query)
            .timeout(timeout);
        Ok(self.data::<T>(request).await?.0)
    }

    /// `POST /api/v1/series` with the selectors in `matches`.
    pub async fn series(
        &self,
        matches: &[String],
        start: Timestamp,
        end: Timestamp,
        timeout: Duration,
    ) -> Result<Vec<Labels>, Failure> {
        let mut form: Vec<(&str, String)> =
            matches.iter().map(|m| ("match[]", m.clone())).collect();
        form.push(("start", unix_seconds(start)));
        form.push(("end", unix_seconds(end)));
        let request = self
            .http
            .post("/api/v1/series")
            .form(&form)
            .timeout(timeout);
        Ok(self.data::<Vec<Labels>>(request).await?.0)
    }
}

/// Prometheus's metadata answer: metric name to its type, help and unit entries.
pub type MetadataMap = BTreeMap<String, Vec<Value>>;

/// `message` with the query line and a caret under the position it names (`1:14: parse
/// error`), so a model sees exactly where its PromQL went wrong.
pub fn with_caret(message: &str, query: &str) -> String {
    let Some((line, col)) = position(message) else {
        return message.to_owned();
    };
    let Some(text) = query.lines().nth(line.saturating_sub(1)) else {
        return message.to_owned();
    };
    let col = col.clamp(1, text.chars().count() + 1);
    format!("{message}\n  {text}\n  {}^", " ".repeat(col - 1))
}

/// The first `line:col:` in a Prometheus parse error.
fn position(message: &str) -> Option<(usize, usize)> {
    let bytes = message.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let rest = &message[i..];
            let mut parts = rest.splitn(3, ':');
            if let (Some(l), Some(c), Some(_)) = (parts.next(), parts.next(), parts.next())
                && let (Ok(l), Ok(c)) = (l.parse(), c.parse())
            {
                return Some((l, c));
            }
        }
        i += 1;
    }
    None
}
