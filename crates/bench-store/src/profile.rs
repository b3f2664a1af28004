//! Credentials from the AWS profile files, for when the environment has none: object_store
//! 0.12 reads `AWS_ACCESS_KEY_ID` and friends but not `~/.aws/credentials`. A small reader of
//! the documented INI layout: `[profile]` sections (`[profile name]` in the config file),
//! `key = value` lines, `#` and `;` comments. The values stay in memory: they are handed to
//! the S3 client and never written anywhere.

use std::path::{Path, PathBuf};

/// What a profile gives.
#[derive(Default, PartialEq, Eq)]
pub(crate) struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

// never print a secret, not even in a debug line
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("access_key_id", &self.access_key_id.is_some())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The value of `key` in section `section` of an INI text.
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

fn home_file(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws").join(name)))
}

/// The profile `name` from a credentials file and a config file (either may be absent).
pub(crate) fn read(name: &str, credentials: Option<&Path>, config: Option<&Path>) -> Profile {
    let text = |p: Option<&Path>| p.and_then(|p| std::fs::read_to_string(p).ok());
    let mut p = Profile::default();
    if let Some(t) = text(credentials) {
        p.access_key_id = ini_value(&t, name, "aws_access_key_id");
        p.secret_access_key = ini_value(&t, name, "aws_secret_access_key");
        p.session_token = ini_value(&t, name, "aws_session_token");
        p.region = ini_value(&t, name, "region");
    }
    if let Some(t) = text(config) {
        let section = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        p.region = ini_value(&t, &section, "region").or(p.region);
    }
    p
}

/// The profile of this process: `AWS_PROFILE` (else `default`) from
/// `AWS_SHARED_CREDENTIALS_FILE` (else ~/.aws/credentials) and `AWS_CONFIG_FILE` (else
/// ~/.aws/config).
pub(crate) fn current() -> Profile {
    let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    read(
        &name,
        home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials").as_deref(),
        home_file("AWS_CONFIG_FILE", "config").as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile_and_its_region() {
        let d = tempfile::tempdir().unwrap();
        let creds = d.path().join("credentials");
        let config = d.path().join("config");
        std::fs::write(
            &creds,
            "# comment\n[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key=sdefault\n\n[team]\n aws_access_key_id = AKTEAM \naws_secret_access_key = steam\naws_session_token = tok\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile team]\nregion=us-west-2\n",
        )
        .unwrap();
        let t = read("team", Some(&creds), Some(&config));
        assert_eq!(t.access_key_id.as_deref(), Some("AKTEAM"));
        assert_eq!(t.secret_access_key.as_deref(), Some("steam"));
        assert_eq!(t.session_token.as_deref(), Some("tok"));
        assert_eq!(t.region.as_deref(), Some("us-west-2"));
        let d0 = read("default", Some(&creds), Some(&config));
        assert_eq!(d0.access_key_id.as_deref(), Some("AKDEFAULT"));
        assert_eq!(d0.session_token, None);
        assert_eq!(d0.region.as_deref(), Some("eu-west-1"));
        assert_eq!(read("absent", Some(&creds), None), Profile::default());
        assert_eq!(read("team", None, None), Profile::default());
        assert!(!format!("{t:?}").contains("steam"), "no secret in Debug");
    }
}
