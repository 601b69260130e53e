//! Configuration in layers: built-in defaults → TOML file → `MEDGRID_*` environment →
//! command-line flags. Each layer overrides only the keys it names.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use medgrid_web::WebConfig;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://medgrid-data/medgrid.db";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (embedded, default) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// Address the HTTP server listens on.
    pub addr: String,
    /// Pooled database connections.
    pub max_connections: u32,
    /// `text` for people, `json` for log collectors.
    pub log_format: String,
    /// Log filter, e.g. `info` or `medgrid=debug,sqlx=warn` (RUST_LOG overrides).
    pub log_level: String,
    pub web: WebConfig,
    pub demo: DemoConfig,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Password of the demo accounts; random when empty (printed at start).
    pub admin_password: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.into(),
            addr: DEFAULT_ADDR.into(),
            max_connections: 10,
            log_format: "text".into(),
            log_level: "info".into(),
            web: WebConfig::default(),
            demo: DemoConfig::default(),
        }
    }
}

/// Secrets never reach logs or terminals through `{:?}`.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_toml())
    }
}

impl Config {
    /// The effective configuration as TOML, with the database password and demo password
    /// replaced.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = medgrid_store::redact_url(&self.database_url);
        if !shown.demo.admin_password.is_empty() {
            shown.demo.admin_password = "***".into();
        }
        toml::to_string(&shown).unwrap_or_default()
    }

    /// Builds the configuration from the file (if any) and the environment; flags are applied
    /// by the caller afterwards.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut tree = toml::Value::try_from(Config::default()).context("default configuration")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?;
            let layer: toml::Value = toml::from_str(&text).with_context(|| {
                format!("configuration file {} is not valid TOML", path.display())
            })?;
            merge(&mut tree, layer);
        }
        for (key, value) in env {
            let Some(name) = key.strip_prefix("MEDGRID_") else {
                continue;
            };
            let path: Vec<String> = if name == "ADMIN_PASSWORD" {
                vec!["demo".into(), "admin_password".into()]
            } else {
                name.to_lowercase().split("__").map(str::to_owned).collect()
            };
            set_known(&mut tree, &path, &value)?;
        }
        let config: Config = tree.try_into().context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            bail!("database_url must start with sqlite:// or postgres://");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format must be text or json, not '{}'", self.log_format);
        }
        if self.max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        Ok(())
    }
}

/// Overlays `layer` onto `base`, table by table.
fn merge(base: &mut toml::Value, layer: toml::Value) {
    match (base, layer) {
        (toml::Value::Table(b), toml::Value::Table(l)) => {
            for (k, v) in l {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, l) => *b = l,
    }
}

/// Sets an environment value at `path` if that key exists, typed like the default there.
/// Variables naming no key (other tools' MEDGRID_* settings) are ignored.
fn set_known(tree: &mut toml::Value, path: &[String], raw: &str) -> anyhow::Result<()> {
    let mut node = tree;
    for part in path {
        match node.get_mut(part.as_str()) {
            Some(next) => node = next,
            None => return Ok(()),
        }
    }
    let name = format!("MEDGRID_{}", path.join("__").to_uppercase());
    *node = match node {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .with_context(|| format!("{name} must be a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            raw.trim()
                .parse()
                .with_context(|| format!("{name} must be true or false"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim()
                .parse()
                .with_context(|| format!("{name} must be a number"))?,
        ),
        toml::Value::Table(_) => bail!("{name} names a table, not a value"),
        _ => toml::Value::String(raw.to_owned()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn layers_override_in_order() {
        let dir = std::env::temp_dir().join(format!("medgrid-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("medgrid.toml");
        std::fs::write(
            &file,
            "addr = \"0.0.0.0:9000\"\nlog_level = \"debug\"\n[web]\nsession_hours = 2\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("MEDGRID_LOG_LEVEL", "warn"),
                ("MEDGRID_WEB__LOGIN_MAX_FAILURES", "3"),
                ("MEDGRID_SKIP_THIS", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.addr, "0.0.0.0:9000"); // file over default
        assert_eq!(c.log_level, "warn"); // env over file
        assert_eq!(c.web.session_hours, 2);
        assert_eq!(c.web.login_max_failures, 3);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let err = Config::load(None, env(&[("MEDGRID_WEB__SESSION_HOURS", "many")])).unwrap_err();
        assert!(format!("{err:#}").contains("MEDGRID_WEB__SESSION_HOURS"));
        let err = Config::load(None, env(&[("MEDGRID_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("database_url"));
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config::load(
            None,
            env(&[
                (
                    "MEDGRID_DATABASE_URL",
                    "postgres://medgrid:s3cret@db/medgrid",
                ),
                ("MEDGRID_ADMIN_PASSWORD", "hunter2hunter2"),
            ]),
        )
        .unwrap();
        assert_eq!(c.demo.admin_password, "hunter2hunter2");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("postgres://medgrid:***@db/medgrid"));
    }
}
