//! The request URL: base URL + the API's path.

use bench_config::client::Api;

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://` (needs the reqwest transport).
    pub https: bool,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Request path (with query, if the base URL had one).
    pub path: String,
    /// Value of the `Host` header.
    pub host_header: String,
    /// The whole URL.
    pub url: String,
}

const KNOWN_SUFFIXES: [&str; 4] = [
    "/chat/completions",
    "/completions",
    "/generate_stream",
    "/generate",
];

/// The API path for `api` (streaming or not).
fn api_path(api: Api, stream: bool) -> &'static str {
    match api {
        Api::OpenaiChat => "/v1/chat/completions",
        Api::OpenaiCompletions => "/v1/completions",
        Api::Tgi if stream => "/generate_stream",
        Api::Tgi => "/generate",
        // a template gives its own path (`Endpoint::parse_path`)
        Api::Template => "",
    }
}

impl Endpoint {
    /// Parses `base` (`http://host:port[/prefix]`) and appends the API's path. A base that
    /// already ends in `/v1` does not get a second one; a base that already names an endpoint
    /// (`.../chat/completions`, `/generate`, ...) is used as it is.
    pub fn parse(base: &str, api: Api, stream: bool) -> Result<Self, String> {
        Self::parse_path(base, api_path(api, stream))
    }

    /// [`Endpoint::parse`] with the API path `api_path` (a template's).
    pub fn parse_path(base: &str, api_path: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = base.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = base.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(format!("`{base}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if let Some((_, host)) = authority.rsplit_once('@') {
            // never echo the credentials
            return Err(format!(
                "`{}://<credentials>@{host}...`: credentials in the URL are not supported; use client.api_key_env or client.headers",
                if https { "https" } else { "http" }
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("`{base}`: unclosed `[` in the host"))?;
            let host = &r[..end];
            let port = match &r[end + 1..] {
                "" => default_port,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("`{base}`: bad port"))?,
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("`{base}`: bad port `{p}`"))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("`{base}`: no host"));
        }
        let (path_only, query) = match path.find('?') {
            Some(i) => (&path[..i], &path[i..]),
            None => (path, ""),
        };
        let trimmed = path_only.trim_end_matches('/');
        let full = if KNOWN_SUFFIXES.iter().any(|s| trimmed.ends_with(s))
            || (!api_path.is_empty() && trimmed.ends_with(api_path))
        {
            trimmed.to_string()
        } else {
            let p = api_path;
            // `/v1` is the OpenAI prefix: the OpenAI paths carry it, and TGI serves
            // /generate(_stream) at its root, beside its own /v1 (OpenAI-compatible) routes
            let pre = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
            format!("{pre}{p}")
        };
        let path = format!("{full}{query}");
        let host_header = if port == default_port {
            authority.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let url = format!(
            "{}://{}{}",
            if https { "https" } else { "http" },
            host_header,
            path
        );
        Ok(Endpoint {
            https,
            host,
            port,
            path,
            host_header,
            url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_for_each_api() {
        let e = Endpoint::parse("http://localhost:8000", Api::OpenaiChat, true).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("localhost", 8000, "/v1/chat/completions")
        );
        assert_eq!(e.url, "http://localhost:8000/v1/chat/completions");
        let e = Endpoint::parse("http://h:1/v1/", Api::OpenaiCompletions, true).unwrap();
        assert_eq!(e.path, "/v1/completions");
        let e = Endpoint::parse("http://h:1/proxy", Api::Tgi, true).unwrap();
        assert_eq!(e.path, "/proxy/generate_stream");
        let e = Endpoint::parse("http://h:1", Api::Tgi, false).unwrap();
        assert_eq!(e.path, "/generate");
        let e = Endpoint::parse("http://h:1/v1", Api::Tgi, true).unwrap();
        assert_eq!(e.path, "/generate_stream");
        let e = Endpoint::parse(
            "http://h:1/x/v1/chat/completions?a=b",
            Api::OpenaiChat,
            true,
        )
        .unwrap();
        assert_eq!(e.path, "/x/v1/chat/completions?a=b");
    }

    #[test]
    fn hosts_ports_and_errors() {
        let e = Endpoint::parse("https://api.example.com", Api::OpenaiChat, false).unwrap();
        assert!(e.https);
        assert_eq!((e.port, e.host_header.as_str()), (443, "api.example.com"));
        let e = Endpoint::parse("http://[::1]:9000", Api::OpenaiChat, true).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.host_header.as_str()),
            ("::1", 9000, "[::1]:9000")
        );
        assert!(
            Endpoint::parse("ftp://x", Api::OpenaiChat, true)
                .unwrap_err()
                .contains("not an http")
        );
        let e = Endpoint::parse("http://u:pw-SECRET@x", Api::OpenaiChat, true).unwrap_err();
        assert!(e.contains("credentials") && !e.contains("SECRET"), "{e}");
        assert!(
            Endpoint::parse("http://x:notaport", Api::OpenaiChat, true)
                .unwrap_err()
                .contains("bad port")
        );
    }
}
