//! `generate-keys`: mint every secret a fresh stack needs and hand it over in the format asked.
//!
//! Minting lives in `secrets.rs` and file editing in `envfile.rs`; this module only decides
//! which keys to mint and how to present them.

use std::io::Write as _;

use zeroize::Zeroizing;

use std::io::IsTerminal as _;

use crate::cli::{GenerateArgs, SecretsFormat};
use crate::envfile::{self, EnvFile};
use crate::error::{Error, Result};
use crate::secrets::{self, Secret};
use crate::ui::Ui;

/// Non-secret variables every PMOVES.AI `.env` carries, with their standard values.
pub const PMOVES_DEFAULTS: &[(&str, &str)] = &[
    ("JWT_EXPIRY", "3600"),
    ("POSTGRES_HOST", "supabase-db"),
    ("POSTGRES_DB", "pmoves"),
    ("POSTGRES_PORT", "5432"),
    ("DOCKED_MODE", "true"),
    ("PARENT_SYSTEM", "PMOVES.AI"),
    ("PARENT_VERSION", "1.0.0"),
    ("MINIO_ENDPOINT", "http://minio:9000"),
    ("NATS_URL", "nats://nats:pmoves@nats:4222"),
];

/// A minted set: secrets in catalogue order, then the standard variables.
pub struct Minted {
    /// `(key, value)` for every secret.
    pub secrets: Vec<(&'static str, Secret)>,
    /// Whether the asymmetric set is included.
    pub asymmetric: bool,
}

impl Minted {
    /// Mints the full set for a fresh stack.
    pub fn fresh(asymmetric: bool) -> Result<Self> {
        Ok(Minted { secrets: secrets::mint_all(asymmetric, secrets::unix_now())?, asymmetric })
    }

    /// Every `(key, value)` of the output: secrets, then the PMOVES.AI defaults.
    fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets.iter().map(|(k, v)| (*k, v.expose())).chain(PMOVES_DEFAULTS.iter().copied())
    }
}

/// Runs `generate-keys`.
pub fn run(args: &GenerateArgs, ui: &Ui) -> Result<()> {
    if args.format == SecretsFormat::K8s {
        validate_k8s_name("--name", &args.name, 253, true)?;
        if let Some(ns) = &args.namespace {
            validate_k8s_name("--namespace", ns, 63, false)?;
        }
    }
    if (args.template.is_some() || args.env_file.is_some()) && args.format != SecretsFormat::Env {
        return Err(Error::Usage("--template and --env-file edit .env text; they take only --format env".into()));
    }
    if let Some(path) = &args.output {
        let minted = Minted::fresh(args.asymmetric)?;
        let text = render(&minted, args.format, &args.name, args.namespace.as_deref())?;
        envfile::create_new(path, text.as_bytes(), args.force)?;
        ui.info(&format!("wrote {} (mode 0600); keep it out of version control", path.display()));
        return Ok(());
    }
    let minted = Minted::fresh(args.asymmetric)?;
    let text = render(&minted, args.format, &args.name, args.namespace.as_deref())?;
    if std::io::stdout().is_terminal() {
        ui.warn("the output below is secret: redirect it to a file (> .env) rather than leaving it on screen");
    }
    write_stdout(&text)
}

/// Kubernetes object name rules (RFC 1123 subdomain for the name, label for the namespace).
pub fn validate_k8s_name(what: &str, value: &str, max: usize, dots: bool) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if value.is_empty()
        || value.len() > max
        || !value.chars().all(ok_char)
        || !alnum(value.chars().next())
        || !alnum(value.chars().last())
    {
        return Err(Error::Usage(format!(
            "{what} '{value}' is not a valid Kubernetes name: use at most {max} lowercase letters, digits{}, starting and ending with a letter or digit",
            if dots { ", '-' or '.'" } else { " or '-'" }
        )));
    }
    Ok(())
}

/// Renders the minted set in `format`.
pub fn render(
    minted: &Minted,
    format: SecretsFormat,
    k8s_name: &str,
    k8s_namespace: Option<&str>,
) -> Result<Zeroizing<String>> {
    match format {
        SecretsFormat::Env => render_env(minted, minted.asymmetric),
        SecretsFormat::Json => Ok(render_json(minted)),
        SecretsFormat::K8s => Ok(render_k8s(minted, k8s_name, k8s_namespace)),
    }
}

/// The built-in template behind the default output: every catalogue key with its comment and
/// an empty value, then the PMOVES.AI variables. Filling it goes through the same rewriter as
/// `--template`, so quoting rules exist in one place only.
pub fn builtin_template(asymmetric: bool) -> String {
    let mut out = format!(
        "# Secrets for a self-hosted Supabase stack (PMOVES.AI), minted by pmoves-secrets {}.\n\
         # Keep this file private (chmod 600) and out of version control.\n\
         # Audit it with `pmoves-secrets check`; rotate the database password with\n\
         # `pmoves-secrets rotate-passwords`, never by editing POSTGRES_PASSWORD here.\n\n\
         ############\n# Secrets\n############\n",
        env!("CARGO_PKG_VERSION")
    );
    for spec in secrets::catalog(asymmetric) {
        out.push_str(&format!("\n# {}\n{}=\n", spec.comment, spec.key));
    }
    out.push_str("\n############\n# PMOVES.AI\n############\n\n");
    for (key, value) in PMOVES_DEFAULTS {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// A complete, commented `.env`: the built-in template with every secret filled in.
fn render_env(minted: &Minted, asymmetric: bool) -> Result<Zeroizing<String>> {
    let mut file = EnvFile::parse(&builtin_template(asymmetric), None)?;
    for (key, value) in &minted.secrets {
        file.set(key, value.expose())?;
    }
    Ok(file.render())
}

/// One JSON object of KEY to value, in catalogue order.
fn render_json(minted: &Minted) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::from("{\n"));
    let mut first = true;
    for (key, value) in minted.all() {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str("  ");
        out.push_str(&json_string(key));
        out.push_str(": ");
        out.push_str(&json_string(value));
    }
    out.push_str("\n}\n");
    out
}

/// A JSON string literal; also a valid YAML double-quoted scalar.
fn json_string(value: &str) -> Zeroizing<String> {
    // Serialising a &str cannot fail; the fallback keeps the output parseable regardless.
    Zeroizing::new(serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned()))
}

/// A `v1` `Secret` with `stringData`, ready for `kubectl apply -f -` and `envFrom`.
fn render_k8s(minted: &Minted, name: &str, namespace: Option<&str>) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(4096));
    out.push_str("apiVersion: v1\nkind: Secret\nmetadata:\n  name: ");
    out.push_str(&json_string(name));
    out.push('\n');
    if let Some(ns) = namespace {
        out.push_str("  namespace: ");
        out.push_str(&json_string(ns));
        out.push('\n');
    }
    out.push_str("  labels:\n    app.kubernetes.io/managed-by: pmoves-secrets\ntype: Opaque\nstringData:\n");
    for (key, value) in minted.all() {
        out.push_str("  ");
        out.push_str(key);
        out.push_str(": ");
        out.push_str(&json_string(value));
        out.push('\n');
    }
    out
}

/// Writes `text` to stdout in full or fails: a truncated secret (closed pipe, full disk) must
/// not look like success.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::Output { target: "standard output".into(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k8s_names_follow_rfc_1123() {
        assert!(validate_k8s_name("--name", "supabase-secrets", 253, true).is_ok());
        assert!(validate_k8s_name("--name", "a.b", 253, true).is_ok());
        assert!(validate_k8s_name("--namespace", "a.b", 63, false).is_err());
        assert!(validate_k8s_name("--name", "Upper", 253, true).is_err());
        assert!(validate_k8s_name("--name", "-lead", 253, true).is_err());
        assert!(validate_k8s_name("--name", "", 253, true).is_err());
    }

    #[test]
    fn env_output_has_every_catalog_key_once() {
        let minted = Minted::fresh(true).unwrap();
        let text = render(&minted, SecretsFormat::Env, "x", None).unwrap();
        for spec in secrets::CATALOG {
            let prefix = format!("\n{}=", spec.key);
            assert_eq!(text.matches(&prefix).count(), 1, "{}", spec.key);
        }
    }
}
