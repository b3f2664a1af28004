//! `storage.*`: object storage (S3 and S3-compatible stores) that runs are pushed to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::Errors;

/// `storage`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where runs are pushed, `s3://bucket[/prefix]` (null: no upload). A run is uploaded at its
    /// end (after analysis, whatever its verdict, interrupted or not) to
    /// `<url>/<run directory name>/`; `bench push` and `bench pull` use it too. Credentials come
    /// from the AWS environment variables or profile (AWS_PROFILE, ~/.aws/credentials), never
    /// from the config.
    pub url: Option<String>,
    /// The store's endpoint for MinIO and other S3-compatible stores, `http(s)://host:port`
    /// (null: AWS S3).
    pub endpoint: Option<String>,
    /// The bucket's region (null: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1).
    pub region: Option<String>,
    /// Retries of a failed request, with exponential backoff.
    #[schemars(range(max = 100))]
    pub retries: u32,
    /// Seconds a request may take, and the most its retries may add up to: an unreachable
    /// store is an error within about this time.
    #[schemars(range(min = 0.1))]
    pub timeout_s: f64,
    /// A failed upload at the end of a run fails the run (exit status 1); otherwise it is a
    /// warning naming the files and the run's exit status is unchanged (its files are all local).
    pub required: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            endpoint: None,
            region: None,
            retries: 5,
            timeout_s: 120.0,
            required: false,
        }
    }
}

/// `s3://bucket[/prefix]` split into the bucket and the prefix (no leading or trailing `/`,
/// possibly empty).
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{url}` is not an s3://bucket[/prefix] URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let ok_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !ok_bucket {
        return Err(format!(
            "`{url}`: `{bucket}` is not a bucket name (3 to 63 lower-case letters, digits, `-` or `.`)"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
        && !prefix.is_empty()
    {
        return Err(format!(
            "`{url}`: the prefix has an empty, `.` or `..` part"
        ));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

impl StorageConfig {
    pub(crate) fn validate(&self, e: &mut Errors) {
        if let Some(u) = &self.url
            && let Err(m) = parse_s3_url(u)
        {
            e.push("storage.url", m);
        }
        if let Some(u) = &self.endpoint
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            e.push(
                "storage.endpoint",
                format!("`{u}` is not an http(s):// URL"),
            );
        }
        if self.required && self.url.is_none() {
            e.push("storage.required", "is true but storage.url is not set");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://runs").unwrap(),
            ("runs".into(), "".into())
        );
        assert_eq!(
            parse_s3_url("s3://my-runs/team/a/").unwrap(),
            ("my-runs".into(), "team/a".into())
        );
        for bad in [
            "http://x/y",
            "s3://",
            "s3://Ab",
            "s3://ab",
            "s3://a_b/c",
            "s3://abc/x//y",
            "s3://abc/../y",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }
}
