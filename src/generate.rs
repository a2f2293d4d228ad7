//! `generate-keys`: mint every secret a fresh stack needs and hand it over where it was asked.
//!
//! Four destinations, one per flag: stdout (`--format env|json|k8s`), a new private file
//! (`--output`), a template printed with its secrets filled in (`--template`), and an existing
//! `.env` updated in place (`--env-file`). Which keys a stack needs is the catalogue of
//! [`crate::stack::keys`], minting lives in [`crate::secrets`] and file editing in
//! [`crate::envfile`]; this module only decides which keys to mint and where the values go.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use zeroize::Zeroizing;

use crate::db::{self, ConnectOptions};
use crate::envfile::{self, EnvFile};
use crate::error::{Error, Result};
use crate::keyring::{self, JWKS_KEY, KEYS_KEY, STATE_KEY};
use crate::limits::parse_lock_wait;
use crate::secret::Secret;
use crate::secrets::{self, Existing};
use crate::service_copies;
use crate::stack::connection::connection_settings;
use crate::stack::copies::{self, Copy};
use crate::stack::demo::is_demo_value;
use crate::stack::keys::{self, KeySpec, POSTGRES_PASSWORD};
use crate::stack::notice;
use crate::stack::settings;
use crate::strength::{self, Weakness};
use crate::ui::Ui;

/// Output formats of `generate-keys` (each variant's doc is its `--help` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretsFormat {
    /// KEY=value lines, a complete commented .env.
    Env,
    /// One JSON object of KEY to value.
    Json,
    /// A Kubernetes v1 Secret manifest (stringData), usable with envFrom.
    K8s,
}

/// Options of `generate-keys`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateOptions {
    /// Also emit the newer asymmetric auth keys (JWT_KEYS, JWT_JWKS, ES256 API keys, opaque keys).
    #[arg(long)]
    pub asymmetric: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = SecretsFormat::Env)]
    pub format: SecretsFormat,

    /// metadata.name of the Kubernetes Secret (--format k8s) [default: supabase-secrets].
    #[arg(long, value_parser = parse_k8s_name)]
    pub name: Option<String>,

    /// metadata.namespace of the Kubernetes Secret (--format k8s).
    #[arg(long, value_parser = parse_k8s_namespace)]
    pub namespace: Option<String>,

    /// Print FILE (e.g. upstream's .env.example) with every secret filled in.
    #[arg(long, value_name = "FILE", group = "target")]
    pub template: Option<PathBuf>,

    /// Update FILE in place: fill secrets that are missing, empty, a published demo value, one of
    /// upstream's placeholders, or too weak for their key (a weak POSTGRES_PASSWORD is kept: the
    /// database would keep the old one; rotate-passwords changes both).
    #[arg(long, value_name = "FILE", group = "target")]
    pub env_file: Option<PathBuf>,

    /// Write to a new FILE created with mode 0600 instead of stdout (also with --template).
    #[arg(long, short, value_name = "FILE", conflicts_with = "env_file")]
    pub output: Option<PathBuf>,

    /// With --env-file: regenerate these keys even when set (comma-separated).
    #[arg(long, value_name = "KEY[,KEY...]", value_delimiter = ',', requires = "env_file", value_parser = CatalogueKeyParser)]
    pub only: Vec<&'static KeySpec>,

    /// With --output: replace an existing file.
    #[arg(long, requires = "output")]
    pub force: bool,

    /// Do not ask before changing a file.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// With --env-file: how long to wait while another run holds the file's lock (e.g. 30s; 0: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lock_wait, requires = "env_file")]
    pub lock_wait: std::time::Duration,
}

/// `--only` values: names of the key catalogue (surrounding spaces tolerated, as in `A, B`),
/// resolved to their catalogue entries. Unknown names are a usage error listing the valid ones.
#[derive(Clone)]
struct CatalogueKeyParser;

impl TypedValueParser for CatalogueKeyParser {
    type Value = &'static KeySpec;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let trimmed = value.to_str().map_or(value, |text| OsStr::new(text.trim()));
        let names = PossibleValuesParser::new(keys::KEYS.iter().map(|spec| spec.key));
        let name = names.parse_ref(cmd, arg, trimmed)?;
        // The possible values are exactly the catalogue's names, so the lookup cannot miss; the
        // fallback error keeps that an error rather than a panic should the two ever drift.
        keys::key(&name).ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(keys::KEYS.iter().map(|spec| PossibleValue::new(spec.key))))
    }
}

/// `--name`: an RFC 1123 subdomain, as Kubernetes requires of object names.
fn parse_k8s_name(text: &str) -> Result<String, String> {
    k8s_name_problem(text, 253, true).map_or(Ok(text.to_owned()), Err)
}

/// `--namespace`: an RFC 1123 label, as Kubernetes requires of namespaces.
fn parse_k8s_namespace(text: &str) -> Result<String, String> {
    k8s_name_problem(text, 63, false).map_or(Ok(text.to_owned()), Err)
}

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
        let mut secrets = mint_all(asymmetric)?;
        with_key_state(&mut secrets, secrets::unix_now());
        Ok(Minted { secrets, asymmetric })
    }

    /// Every `(key, value)` of the output: secrets, then the stack's non-secret defaults.
    fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets.iter().map(|(k, v)| (*k, v.expose())).chain(settings::defaults())
    }
}

/// `metadata.name` of the Kubernetes `Secret` when `--name` is not given.
const DEFAULT_K8S_NAME: &str = "supabase-secrets";

/// Runs `generate-keys`.
pub fn run(args: &GenerateOptions, ui: &Ui) -> Result<()> {
    check_format_options(args)?;
    if let Some(path) = &args.env_file {
        return update_env_file(path, args, ui);
    }
    let text = match &args.template {
        Some(path) => fill_template(path, args.asymmetric, ui)?,
        None => {
            let minted = Minted::fresh(args.asymmetric)?;
            let name = args.name.as_deref().unwrap_or(DEFAULT_K8S_NAME);
            render(&minted, args.format, name, args.namespace.as_deref())?
        }
    };
    match &args.output {
        Some(path) => {
            envfile::create_new(path, text.as_bytes(), args.force)?;
            ui.info(&format!("wrote {} (mode 0600); keep it out of version control", path.display()));
            Ok(())
        }
        None => print_secret_text(&text, ui),
    }
}

/// Checks that `--format` fits the destination and the options that only make sense with one of
/// its values, before any file is read (the Kubernetes names themselves are checked by clap).
fn check_format_options(args: &GenerateOptions) -> Result<()> {
    if args.format != SecretsFormat::K8s && (args.name.is_some() || args.namespace.is_some()) {
        let flag = if args.name.is_some() { "--name" } else { "--namespace" };
        return Err(Error::Usage(format!(
            "{flag} names the Kubernetes Secret, so it needs --format k8s (it would be ignored otherwise)"
        )));
    }
    if (args.template.is_some() || args.env_file.is_some()) && args.format != SecretsFormat::Env {
        return Err(Error::Usage("--template and --env-file edit .env text; they take only --format env".into()));
    }
    Ok(())
}

/// Writes secret text to stdout, with a reminder on stderr when stdout is a terminal (the
/// values would otherwise sit in the scrollback unnoticed).
fn print_secret_text(text: &str, ui: &Ui) -> Result<()> {
    if std::io::stdout().is_terminal() {
        ui.warn("the output below is secret: redirect it to a file (> .env) rather than leaving it on screen");
    }
    crate::ui::write_stdout(text)
}

// ------------------------------------------------------------------------------- --template

/// `--template FILE`: FILE with every secret filled in, for stdout or `--output`.
///
/// Every catalogue secret the template names gets a fresh value, whatever it holds: a template
/// is the pattern for a new stack (upstream's `.env.example` holds only published demo values),
/// and a real-looking value found in one is a value that whoever wrote the template also has.
/// Secrets the template lacks are appended in one block at the end. Every other line is the
/// operator's choice and is printed byte for byte; the PMOVES.AI defaults are *not* added (they
/// belong to the built-in template of the default output).
///
/// A template that names any asymmetric key gets the whole asymmetric set, as `--env-file`
/// does: otherwise its placeholders for that set would reach the stack unfilled.
fn fill_template(path: &Path, asymmetric: bool, ui: &Ui) -> Result<Zeroizing<String>> {
    let mut file = EnvFile::read(path)?;
    let asymmetric = asymmetric || names_asymmetric_keys(&file);
    let lacking: Vec<&str> = keys::catalogue(asymmetric).map(|s| s.key).filter(|k| !file.contains(k)).collect();
    warn_duplicates(&file, path, |key| keys::key(key).is_some_and(|s| asymmetric || !s.asymmetric), ui);
    let mut minted = mint_all(asymmetric)?;
    with_key_state(&mut minted, secrets::unix_now());
    set_all(&mut file, &minted)?;
    if !lacking.is_empty() {
        ui.info(&format!("{} lacks {}: appended at the end", path.display(), lacking.join(", ")));
    }
    Ok(file.render())
}

/// Whether the file names any key of the asymmetric set (even with an empty value): then the
/// stack uses that set and all of it must be filled.
fn names_asymmetric_keys(file: &EnvFile) -> bool {
    keys::KEYS.iter().any(|spec| spec.asymmetric && file.contains(spec.key))
}

/// Whether an existing `.env` uses the asymmetric set: a key of it holds a value. Unlike a
/// template, an existing stack's empty `JWT_KEYS=` (as upstream's template and the default output
/// write it) means the set is not in use, and filling it would change what Auth signs with.
fn uses_asymmetric_keys(file: &EnvFile) -> bool {
    keys::KEYS.iter().any(|spec| spec.asymmetric && file.value(spec.key).is_some())
}

/// Sets every minted value in `file`.
fn set_all(file: &mut EnvFile, minted: &[(&'static str, Secret)]) -> Result<()> {
    for (key, value) in minted {
        file.set(key, value.expose())?;
    }
    Ok(())
}

/// Warns about every key defined more than once: compose uses the last occurrence, so an
/// earlier one is dead text that can mislead a reader. `changing` tells the keys whose every
/// occurrence gets the new value.
fn warn_duplicates(file: &EnvFile, path: &Path, changing: impl Fn(&str) -> bool, ui: &Ui) {
    for key in file.duplicate_keys() {
        let consequence =
            if changing(key) { "every occurrence gets the new value" } else { "docker compose uses the last one" };
        ui.warn(&format!("{key} is defined more than once in {}; {consequence}", path.display()));
    }
}

// ------------------------------------------------------------------------------- --env-file

/// Why a key of an existing `.env` gets a new value. Shown to the operator before asking; never
/// carries the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The file does not have the key.
    Missing,
    /// The key is there with an empty value.
    Empty,
    /// The value was published (upstream's `.env.example`, demo tokens).
    Demo,
    /// One of upstream's placeholders for a secret.
    Placeholder,
    /// Too easy to guess for the key (the strength estimate `check` uses).
    Weak,
    /// The operator named it in `--only`.
    Only,
    /// Derived from a key that gets a new value (tokens signed by `JWT_SECRET` or `JWT_KEYS`).
    Dependent(&'static str),
    /// `JWT_KEYS` kept, only its `oct` key follows the new `JWT_SECRET` (SPEC §7).
    OctFollows,
    /// `JWT_JWKS` rebuilt from every key of `JWT_KEYS` (SPEC §7).
    Rebuilt,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("missing"),
            Reason::Empty => f.write_str("empty"),
            Reason::Demo => f.write_str("a publicly known demo value"),
            Reason::Placeholder => f.write_str("a placeholder from upstream's .env.example"),
            Reason::Weak => f.write_str("too easy to guess"),
            Reason::Only => f.write_str("named in --only"),
            Reason::Dependent(source) => write!(f, "re-minted with the new {source}"),
            Reason::OctFollows => {
                f.write_str("its HS256 oct key follows the new JWT_SECRET; every EC key and its state stay")
            }
            Reason::Rebuilt => f.write_str("rebuilt from every key of JWT_KEYS (public parts and the oct key)"),
        }
    }
}

/// One key that will get a new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    key: &'static str,
    reason: Reason,
}

/// `--env-file FILE`: fills, in place, the secrets FILE lacks or holds empty or as a demo value,
/// plus those named in `--only` and everything derived from them.
///
/// The whole read-plan-ask-write cycle runs under the file's lock, so a concurrent writer (a
/// second `generate-keys`, a rotation) can neither interleave nor be overwritten with stale
/// text. A missing FILE is refused rather than created: `--env-file` promises to keep what is
/// in the file, and a typo in the path should not silently produce a new file next to the real
/// one (`--output` creates files). Nothing to do is success and leaves FILE byte-identical.
fn update_env_file(path: &Path, args: &GenerateOptions, ui: &Ui) -> Result<()> {
    envfile::require_existing(path).map_err(|error| match error {
        envfile::EnvFileError::Missing { path } => envfile::EnvFileError::MissingBeforeFirstStart { path },
        other => other,
    })?;
    let env = ui.lock_env(path, args.lock_wait)?;
    // Refused before the plan is shown and the operator asked: a yes would be wasted, since the
    // write refuses too (settling the rotation later would undo it).
    env.refuse_while_pending()?;
    let mut file = env.read_existing()?;
    let only: BTreeSet<&'static str> = args.only.iter().map(|spec| spec.key).collect();
    let plan = plan_changes(&file, path, &only, args.asymmetric, is_demo_value)?;
    warn_duplicates(&file, path, |key| plan.iter().any(|c| c.key == key), ui);
    warn_weak_database_password(&file, path, ui);
    let planned = plan.len();
    let plan = hold_back_keys_with_copies(&file, path, plan, ui)?;
    if plan.is_empty() {
        let why = match planned {
            0 => "every secret in it is set and none is a demo, placeholder or weak value",
            _ => "the secrets it would fill are left as they are (above)",
        };
        ui.info(&format!("nothing to change in {}: {why}", path.display()));
        return Ok(());
    }
    let minted = mint_planned(&file, path, &plan)?;
    show_plan(path, &plan, ui);
    confirm_plan(path, &plan, args.yes, ui)?;
    // A hand edit saved while the operator answered is kept (or refused when it touches a key
    // this run changes): the write goes onto the file as it is then.
    let base = file.clone();
    set_all(&mut file, &minted)?;
    env.update(&base, &file)?;
    ui.info(&format!(
        "updated {}: {} changed (mode and owner kept); recreate the stack's containers so they read the new values",
        path.display(),
        count(plan.len())
    ));
    Ok(())
}

/// Decides which keys get a new value and why, in catalogue order.
///
/// - A catalogue key that is missing, empty, a known demo value, a placeholder or weak is filled.
/// - A key named in `--only` is regenerated even when set.
/// - Everything derived from a regenerated key is re-minted with it
///   ([`keys::with_dependents`]): no token is left signed by a key that no longer exists.
/// - The asymmetric set takes part only when it is in use: `--asymmetric`, a key of it set in
///   the file, or one named in `--only`.
/// - A set, non-demo `POSTGRES_PASSWORD` is never changed, and naming it in `--only` fails (exit
///   1, nothing changed) rather than being skipped: a new value in the file would not change the
///   database's password, so every service would lose its connection. `rotate-passwords`
///   changes both. A missing, empty or demo one is filled: that is a fresh stack.
fn plan_changes(
    file: &EnvFile,
    path: &Path,
    only: &BTreeSet<&'static str>,
    asymmetric: bool,
    is_demo: impl Fn(&str) -> bool,
) -> Result<Vec<Change>> {
    let asymmetric = asymmetric
        || uses_asymmetric_keys(file)
        || only.iter().any(|key| keys::key(key).is_some_and(|spec| spec.asymmetric));
    let mut reasons: BTreeMap<&'static str, Reason> = BTreeMap::new();
    for spec in keys::catalogue(asymmetric) {
        let fill = fill_reason(spec.key, file.get(spec.key), &is_demo);
        if let Some(reason) = fill.or(only.contains(spec.key).then_some(Reason::Only)) {
            reasons.insert(spec.key, reason);
        }
    }
    if reasons.get(POSTGRES_PASSWORD) == Some(&Reason::Only) {
        return Err(postgres_password_refusal(path));
    }
    let base: BTreeSet<&'static str> = reasons.keys().copied().collect();
    let keeps_ring = keeps_ring(file, &base);
    let signed_by_the_ring = keys::with_dependents(&BTreeSet::from([KEYS_KEY]), true);
    for key in keys::with_dependents(&base, asymmetric) {
        if keeps_ring && !base.contains(key) && key_of_the_ring(key).is_none() && signed_by_the_ring.contains(key) {
            // Signed by the kept EC key, which does not change.
            continue;
        }
        let reason = match key_of_the_ring(key).filter(|_| keeps_ring && !base.contains(key)) {
            Some(reason) => reason,
            None => Reason::Dependent(derived_from(key, &base, asymmetric)),
        };
        reasons.entry(key).or_insert(reason);
    }
    if keeps_ring && base.contains(JWKS_KEY) {
        reasons.insert(JWKS_KEY, Reason::Rebuilt);
    }
    refuse_remint_in_rotation(file, path, &base)?;
    Ok(keys::KEYS
        .iter()
        .filter_map(|spec| reasons.get(spec.key).map(|&reason| Change { key: spec.key, reason }))
        .collect())
}

/// Whether the file's EC keys are kept: `JWT_KEYS` is set and nothing asks for a new one (a new
/// `JWT_SECRET` changes only its `oct` key, SPEC §7).
fn keeps_ring(file: &EnvFile, base: &BTreeSet<&'static str>) -> bool {
    file.get(KEYS_KEY).is_some_and(|v| !v.trim().is_empty()) && !base.contains(KEYS_KEY)
}

/// How a key of the kept ring changes: `JWT_KEYS` only in its `oct` key, `JWT_JWKS` rebuilt.
/// `None` for keys outside the two sets.
fn key_of_the_ring(key: &str) -> Option<Reason> {
    match key {
        KEYS_KEY => Some(Reason::OctFollows),
        JWKS_KEY => Some(Reason::Rebuilt),
        _ => None,
    }
}

/// A new EC ring (a `JWT_KEYS` asked for, or judged missing or weak) is refused while a
/// rotation is in progress: it would log out every session of the standby and previous keys.
fn refuse_remint_in_rotation(file: &EnvFile, path: &Path, base: &BTreeSet<&'static str>) -> Result<()> {
    let Some(keys) = file.get(KEYS_KEY).filter(|v| !v.trim().is_empty()) else { return Ok(()) };
    if !base.contains(KEYS_KEY) {
        return Ok(());
    }
    match keyring::remint_refusal(keys, file.get(STATE_KEY)) {
        Some(problem) => Err(Error::BadValue {
            path: path.to_path_buf(),
            key: KEYS_KEY.into(),
            problem: format!("{problem} (nothing was changed)"),
        }),
        None => Ok(()),
    }
}

/// Why a current value must be replaced regardless of `--only`, if it must: what `check` calls
/// missing, demo, placeholder or weak. A set `POSTGRES_PASSWORD` that is only weak is left to
/// `rotate-passwords` (see [`warn_weak_database_password`]).
fn fill_reason(key: &str, value: Option<&str>, is_demo: impl Fn(&str) -> bool) -> Option<Reason> {
    match value {
        None => Some(Reason::Missing),
        Some("") => Some(Reason::Empty),
        Some(value) if is_demo(value) => Some(Reason::Demo),
        Some(value) => match strength::judge(key, value)? {
            Weakness::Placeholder(_) => Some(Reason::Placeholder),
            Weakness::Weak { .. } if key == POSTGRES_PASSWORD => None,
            Weakness::Weak { .. } => Some(Reason::Weak),
        },
    }
}

/// A weak but set `POSTGRES_PASSWORD` is never replaced here (the database would keep the old
/// one); say so, with the command that changes both.
fn warn_weak_database_password(file: &EnvFile, path: &Path, ui: &Ui) {
    let Some(value) = file.value(POSTGRES_PASSWORD) else { return };
    if matches!(strength::judge(POSTGRES_PASSWORD, value), Some(Weakness::Weak { .. })) {
        ui.warn(&format!(
            "POSTGRES_PASSWORD in {} is too easy to guess, but generate-keys never changes a set one: the database \
             would keep the old password; rotate it with `pmoves-secrets rotate-passwords --env-file {}`",
            path.display(),
            path.display()
        ));
    }
}

/// The regenerated key that `key` is re-minted for: `JWT_SECRET` when that is regenerated and
/// signs `key` (directly or through `JWT_KEYS`' `oct` key), else `JWT_KEYS`.
fn derived_from(key: &str, base: &BTreeSet<&'static str>, asymmetric: bool) -> &'static str {
    let from_secret = keys::with_dependents(&BTreeSet::from(["JWT_SECRET"]), asymmetric);
    if base.contains("JWT_SECRET") && from_secret.contains(key) {
        "JWT_SECRET"
    } else {
        "JWT_KEYS"
    }
}

fn postgres_password_refusal(path: &Path) -> Error {
    Error::BadValue {
        path: path.to_path_buf(),
        key: POSTGRES_PASSWORD.into(),
        problem: format!(
            "is set, and generate-keys never changes it: a new value in the file would not change \
             the database's password; rotate it with `pmoves-secrets rotate-passwords --env-file {}`, \
             which changes both (nothing was changed)",
            path.display()
        ),
    }
}

/// Mints the complete set for a fresh stack, in catalogue order.
pub fn mint_all(asymmetric: bool) -> Result<Vec<(&'static str, Secret)>> {
    let recipes = keys::catalogue(asymmetric).map(|spec| (spec.key, spec.recipe));
    secrets::mint(recipes, &secrets::Existing::default(), secrets::unix_now())
}

/// Mints the planned keys. Tokens re-minted without a new `JWT_SECRET` (or `JWT_KEYS`) are
/// signed with the file's own, so they stay valid for the services already running with it.
/// Runs before the question, so a key that cannot be minted fails before anyone is asked.
fn mint_planned(file: &EnvFile, path: &Path, plan: &[Change]) -> Result<Vec<(&'static str, Secret)>> {
    let current = |key: &str| file.value(key).map(|v| Secret::new(v.to_owned()));
    let existing = Existing { jwt_secret: current("JWT_SECRET"), jwt_keys: current("JWT_KEYS") };
    let kept_ring = plan.iter().any(|change| matches!(change.reason, Reason::OctFollows | Reason::Rebuilt));
    let wanted: BTreeSet<&str> =
        plan.iter().map(|change| change.key).filter(|key| !kept_ring || key_of_the_ring(key).is_none()).collect();
    let recipes = keys::KEYS.iter().filter(|spec| wanted.contains(spec.key)).map(|spec| (spec.key, spec.recipe));
    let now = secrets::unix_now();
    let mut minted = secrets::mint(recipes, &existing, now).map_err(|error| match error {
        Error::Mint { key, reason } => Error::BadValue {
            path: path.to_path_buf(),
            key: key.into(),
            problem: format!("cannot be minted: {reason}; nothing was changed"),
        },
        other => other,
    })?;
    with_key_state(&mut minted, now);
    if kept_ring {
        let new_secret = minted.iter().find(|(key, _)| *key == "JWT_SECRET").map(|(_, v)| v.expose().to_owned());
        let keys = file.get(KEYS_KEY).unwrap_or_default();
        let sets =
            keyring::rebuilt_sets(keys, file.get(JWKS_KEY), new_secret.as_deref()).map_err(|e| Error::BadValue {
                path: path.to_path_buf(),
                key: e.key.into(),
                problem: format!(
                    "{}, so its keys cannot be kept; re-mint the ring with --only JWT_KEYS (this logs everyone \
                     out); nothing was changed",
                    e.problem
                ),
            })?;
        let planned = |key: &str| plan.iter().any(|change| change.key == key);
        minted.extend(sets.into_iter().filter(|(key, _)| planned(key)).map(|(key, value)| (key, Secret::new(value))));
    }
    Ok(minted)
}

/// A freshly minted `JWT_KEYS` comes with its `JWT_KEYS_STATE`: its signer is current since now
/// (so `rotate-keys status` can say since when).
fn with_key_state(minted: &mut Vec<(&'static str, Secret)>, now: u64) {
    let record =
        minted.iter().find(|(key, _)| *key == KEYS_KEY).and_then(|(_, v)| keyring::initial_record(v.expose(), now));
    if let Some(record) = record {
        minted.push((STATE_KEY, Secret::new(record)));
    }
}

/// Lists the planned keys and why each changes, on stderr (names only, never values).
fn show_plan(path: &Path, plan: &[Change], ui: &Ui) {
    ui.info(&format!("{} will get new values for {}:", path.display(), count(plan.len())));
    let width = plan.iter().map(|change| change.key.len()).max().unwrap_or(0);
    for change in plan {
        ui.info(&format!("  {:<width$}  {}", change.key, change.reason));
    }
    // The tokens signed with `JWT_SECRET`: re-signing them alone cannot revoke the old ones.
    let tokens_of_jwt_secret: Vec<&str> = keys::api_keys(false).map(|(key, _)| key).collect();
    let resigned: Vec<&str> = plan
        .iter()
        .filter(|change| change.reason == Reason::Only && tokens_of_jwt_secret.contains(&change.key))
        .map(|change| change.key)
        .collect();
    if !resigned.is_empty() && !plan.iter().any(|change| change.key == "JWT_SECRET") {
        ui.warn(&format!(
            "{} will be re-signed with the file's JWT_SECRET: the old token stays valid until it expires; \
             to revoke it, regenerate JWT_SECRET (--only JWT_SECRET)",
            resigned.join(" and ")
        ));
    }
    // The keys rotate-secrets rotates; the database password (which has copies too) is
    // rotate-passwords', named in the warning below.
    let with_copies: Vec<&str> = plan
        .iter()
        .map(|change| change.key)
        .filter(|key| copies::has_database_copies(key) && copies::rotated_by(key).is_none())
        .collect();
    if !with_copies.is_empty() {
        ui.warn(&format!(
            "{} {} copies outside .env ({}): this command changes the .env alone, for a stack that has not started; \
             on a running stack answer no and use `pmoves-secrets rotate-secrets {}`, which follows every copy",
            with_copies.join(", "),
            if with_copies.len() == 1 { "has" } else { "have" },
            places_of(&with_copies),
            with_copies.join(" ")
        ));
    }
    if plan.iter().any(|change| change.key == POSTGRES_PASSWORD) {
        ui.warn(
            "the new POSTGRES_PASSWORD only reaches a database initialised after this; if the \
             database already runs, answer no and use `pmoves-secrets rotate-passwords`",
        );
    }
}

/// Asks before writing. Replacing a value the services may already run with, where users
/// notice (sessions end, clients are refused), names each consequence and takes a typed `yes`;
/// filling what nothing holds yet takes `y` and Enter.
fn confirm_plan(path: &Path, plan: &[Change], yes: bool, ui: &Ui) -> Result<()> {
    let question = format!("Update {} with these changes?", path.display());
    let action = format!("updating {}", path.display());
    let noticed: Vec<(&str, &str)> = plan
        .iter()
        .filter(|change| matches!(change.reason, Reason::Demo | Reason::Placeholder | Reason::Weak | Reason::Only))
        .filter_map(|change| notice::what_users_notice(change.key).map(|text| (change.key, text)))
        .collect();
    if noticed.is_empty() {
        return ui.confirm(&question, &action, yes);
    }
    if !yes {
        ui.prompt_context("If the stack already runs with the current values:");
        for (key, text) in &noticed {
            ui.prompt_context(&format!("  a new {key}: {text}"));
        }
    }
    ui.confirm_typed(&question, &[], &action, yes)
}

/// The places of the copies of `keys`, for the plan.
fn places_of(keys: &[&str]) -> String {
    let mut places: Vec<String> = Vec::new();
    for copy in keys.iter().flat_map(|key| copies::copies_of(key)) {
        let place = copy.place();
        if !places.contains(&place) {
            places.push(place);
        }
    }
    places.join("; ")
}

/// How long `--env-file` waits to reach the database it looks for copies in, and for a lock there.
const LOOK_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
const LOOK_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `--env-file` is for a stack that has not started (SPEC §8): a planned key whose copies the
/// stack's database already holds is never re-minted here, since the copies would be left stale
/// (Supavisor crash-looping on a new `VAULT_ENC_KEY`, Logflare accepting an old token, ...).
///
/// The database is the one the `.env` names, reached as `rotate-secrets` would reach it (the
/// `.env`'s `POSTGRES_*`, or `PMOVES_SECRETS_DB_URL`), only when the file has a
/// `POSTGRES_PASSWORD` (without one, no stack has started from it) and only for a few seconds
/// (nobody answering means a stack that is not running here, and the plan's warning stands). A
/// key named in `--only` is refused (exit 1, nothing changed); one that would only be filled (a
/// demo or weak value) is held back with a warning, the rest of the plan going ahead.
fn hold_back_keys_with_copies(file: &EnvFile, path: &Path, plan: Vec<Change>, ui: &Ui) -> Result<Vec<Change>> {
    let planned: Vec<&'static str> =
        plan.iter().filter(|c| !matches!(c.reason, Reason::Dependent(_))).map(|c| c.key).collect();
    let wanted: Vec<&'static Copy> = copies::COPIES.iter().filter(|c| planned.iter().any(|k| c.follows(k))).collect();
    if wanted.is_empty() {
        return Ok(plan);
    }
    let Some(held) = look_for_copies(file, &wanted, ui) else { return Ok(plan) };
    let held_keys: BTreeSet<&'static str> =
        planned.iter().copied().filter(|key| held.iter().any(|(copy, _)| copy.follows(key))).collect();
    let places = |key: &str| {
        held.iter()
            .filter(|(copy, _)| copy.follows(key))
            .map(|(copy, dbname)| format!("{} in database {dbname}", copy.place()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(change) = plan.iter().find(|c| held_keys.contains(c.key) && c.reason == Reason::Only) {
        return Err(Error::BadValue {
            path: path.to_path_buf(),
            key: change.key.into(),
            problem: format!(
                "has copies in the stack's database ({}), which a new value in the file alone would leave stale; \
                 rotate it with `{} --env-file {}`, which follows them (nothing was changed)",
                places(change.key),
                rotating_command(change.key),
                path.display()
            ),
        });
    }
    for change in plan.iter().filter(|c| held_keys.contains(c.key)) {
        ui.warn(&format!(
            "{} is {} but is left as it is: the stack's database holds copies of it ({}); rotate it with `{}`",
            change.key,
            change.reason,
            places(change.key),
            rotating_command(change.key)
        ));
    }
    Ok(plan
        .into_iter()
        .filter(|c| {
            !held_keys.contains(c.key) && !matches!(c.reason, Reason::Dependent(from) if held_keys.contains(from))
        })
        .collect())
}

/// The command that rotates `key` on a running stack with every copy of it: `rotate-secrets`,
/// except for the database password, which `rotate-passwords` changes (rotate-secrets refuses it).
fn rotating_command(key: &str) -> String {
    match key {
        POSTGRES_PASSWORD => "pmoves-secrets rotate-passwords".to_owned(),
        _ => format!("pmoves-secrets rotate-secrets {key}"),
    }
}

/// The copies among `wanted` that the `.env`'s database holds; `None` when it could not look.
fn look_for_copies(file: &EnvFile, wanted: &[&'static Copy], ui: &Ui) -> Option<Vec<(&'static Copy, String)>> {
    if file.get(POSTGRES_PASSWORD).is_none_or(str::is_empty) {
        ui.detail("no POSTGRES_PASSWORD in the file, so no stack has started from it: the database was not looked at");
        return None;
    }
    let target = db::resolve(&ConnectOptions::default(), &connection_settings(file))
        .ok()?
        .target
        .with_connect_timeout(LOOK_CONNECT_TIMEOUT);
    let runtime = db::runtime().ok()?;
    match runtime.block_on(service_copies::held(&target, wanted, LOOK_LOCK_TIMEOUT)) {
        Ok(held) => Some(held),
        Err(not) if !not.answered => {
            ui.detail(&format!(
                "no database answered at {} ({}): copies not looked for",
                target.host_port(),
                not.reason
            ));
            None
        }
        Err(not) => {
            ui.warn(&format!(
                "could not look for copies in the database at {} ({}); if that stack has started, answer no and use \
                 `pmoves-secrets rotate-secrets`",
                target.host_port(),
                not.reason
            ));
            None
        }
    }
}

/// "1 secret", "3 secrets".
fn count(n: usize) -> String {
    format!("{n} secret{}", if n == 1 { "" } else { "s" })
}

// ----------------------------------------------------------------------------- stdout formats

/// What is wrong with `value` as a Kubernetes object name (RFC 1123: a subdomain when `dots`,
/// else a label), or `None` when it is valid.
pub fn k8s_name_problem(value: &str, max: usize, dots: bool) -> Option<String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = !value.is_empty()
        && value.len() <= max
        && value.chars().all(ok_char)
        && alnum(value.chars().next())
        && alnum(value.chars().last());
    (!valid).then(|| {
        format!(
            "not a valid Kubernetes name: use at most {max} lowercase letters, digits{}, starting and ending with a letter or digit",
            if dots { ", '-' or '.'" } else { " or '-'" }
        )
    })
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

/// A complete, commented `.env` (the default output): every catalogue secret with its comment
/// and value, then every non-secret variable upstream's compose file reads (with upstream's
/// defaults) and the PMOVES.AI variables. Each value is written by the rewriter's quoting rule
/// ([`envfile::quote_value`]), so the rule exists in one place; writing the text directly rather
/// than parsing a template and filling it keeps the fastest path of the tool small.
///
/// Without `--asymmetric` the asymmetric keys are still named, empty, as upstream's template
/// names them: its compose file reads them, and an empty value there means "not in use".
fn render_env(minted: &Minted, asymmetric: bool) -> Result<Zeroizing<String>> {
    // Room for the whole text (about 9 KiB with --asymmetric): growing would leave a copy unwiped.
    let mut out = Zeroizing::new(String::with_capacity(16 * 1024));
    let line = |out: &mut String, key: &str, value: &str| {
        out.push_str(key);
        out.push('=');
        if !value.is_empty() {
            out.push_str(&envfile::quote_value(value));
        }
        out.push('\n');
    };
    out.push_str(&format!(
        "# Secrets and settings for a self-hosted Supabase stack (PMOVES.AI), made by pmoves-secrets {}.\n\
         # Complete for upstream {}.\n\
         # Keep this file private (chmod 600) and out of version control.\n\
         # Audit it with `pmoves-secrets check`; rotate the database password with\n\
         # `pmoves-secrets rotate-passwords`, never by editing POSTGRES_PASSWORD here.\n\n\
         ############\n# Secrets\n############\n",
        env!("CARGO_PKG_VERSION"),
        settings::UPSTREAM_RELEASE
    ));
    for spec in keys::catalogue(asymmetric) {
        let value = minted.secrets.iter().find(|(key, _)| *key == spec.key).map_or("", |(_, v)| v.expose());
        out.push_str("\n# ");
        out.push_str(spec.comment);
        out.push('\n');
        line(&mut out, spec.key, value);
    }
    if let Some((_, record)) = minted.secrets.iter().find(|(key, _)| *key == STATE_KEY) {
        out.push_str("\n# When each signing key took its state (rotate-keys keeps it; read by no service)\n");
        line(&mut out, STATE_KEY, record.expose());
    }
    if !asymmetric {
        out.push_str(
            "\n# Asymmetric auth keys: not in use, so left empty (the HS256 keys above are used).\n\
             # `pmoves-secrets generate-keys --env-file .env --asymmetric` fills them.\n",
        );
        for spec in keys::KEYS.iter().filter(|spec| spec.asymmetric) {
            line(&mut out, spec.key, "");
        }
    }
    for section in settings::SECTIONS.iter().chain(std::iter::once(&settings::PMOVES_SECTION)) {
        out.push_str(&format!("\n############\n# {}\n############\n\n", section.title));
        for setting in section.settings {
            if let Some(comment) = setting.comment {
                out.push_str(&format!("# {comment}\n"));
            }
            // Quoted by the rule where needed: a value with a space is refused bare by dotenv
            // readers such as Rust's dotenvy.
            line(&mut out, setting.key, setting.value);
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k8s_names_follow_rfc_1123() {
        assert!(k8s_name_problem("supabase-secrets", 253, true).is_none());
        assert!(k8s_name_problem("a.b", 253, true).is_none());
        assert!(k8s_name_problem("a.b", 63, false).is_some());
        assert!(k8s_name_problem("Upper", 253, true).is_some());
        assert!(k8s_name_problem("-lead", 253, true).is_some());
        assert!(k8s_name_problem("", 253, true).is_some());
        assert!(k8s_name_problem(&"a".repeat(64), 63, false).is_some());
    }

    fn plan(text: &str, only: &[&'static str], asymmetric: bool) -> Result<Vec<(&'static str, Reason)>> {
        let file = EnvFile::parse(text, None).unwrap();
        let only: BTreeSet<&'static str> = only.iter().copied().collect();
        let plan = plan_changes(&file, Path::new(".env"), &only, asymmetric, |v| v.starts_with("demo"))?;
        Ok(plan.into_iter().map(|change| (change.key, change.reason)).collect())
    }

    /// A value no rule objects to (not a demo, placeholder, nor weak).
    const SET: &str = "k3J9qLm2xP7vR4zW8nB5tY6uH1cD0fGa";

    /// A file where every symmetric secret is set to an acceptable value.
    fn complete() -> String {
        keys::catalogue(false).map(|spec| format!("{}={SET}\n", spec.key)).collect()
    }

    #[test]
    fn an_empty_file_gets_the_symmetric_catalogue_as_missing() {
        let planned = plan("# only a comment\n", &[], false).unwrap();
        let expected: Vec<_> = keys::catalogue(false).map(|spec| (spec.key, Reason::Missing)).collect();
        assert_eq!(planned, expected);
    }

    #[test]
    fn a_complete_file_needs_nothing() {
        assert_eq!(plan(&complete(), &[], false).unwrap(), []);
    }

    #[test]
    fn empty_and_demo_values_are_filled_and_tokens_follow_a_new_secret() {
        let text = complete()
            .replace(&format!("JWT_SECRET={SET}"), "JWT_SECRET=demo")
            .replace(&format!("VAULT_ENC_KEY={SET}"), "VAULT_ENC_KEY=");
        assert_eq!(
            plan(&text, &[], false).unwrap(),
            [
                ("JWT_SECRET", Reason::Demo),
                ("ANON_KEY", Reason::Dependent("JWT_SECRET")),
                ("SERVICE_ROLE_KEY", Reason::Dependent("JWT_SECRET")),
                ("VAULT_ENC_KEY", Reason::Empty),
            ]
        );
    }

    #[test]
    fn only_a_token_leaves_the_secret_alone() {
        assert_eq!(plan(&complete(), &["ANON_KEY"], false).unwrap(), [("ANON_KEY", Reason::Only)]);
    }

    #[test]
    fn a_set_postgres_password_in_only_is_refused_but_a_demo_one_is_filled() {
        let error = plan(&complete(), &["POSTGRES_PASSWORD"], false).unwrap_err();
        assert!(error.to_string().contains("rotate-passwords"), "{error}");
        let demo = complete().replace(&format!("POSTGRES_PASSWORD={SET}"), "POSTGRES_PASSWORD=demo");
        assert_eq!(plan(&demo, &["POSTGRES_PASSWORD"], false).unwrap(), [("POSTGRES_PASSWORD", Reason::Demo)]);
    }

    #[test]
    fn the_asymmetric_set_joins_when_the_file_or_only_names_it() {
        let with_keys = format!("{}JWT_KEYS={SET}\n", complete());
        let planned = plan(&with_keys, &["JWT_SECRET"], false).unwrap();
        // A set JWT_KEYS is kept: only its oct key follows, and JWT_JWKS is rebuilt from it.
        assert!(planned.contains(&("JWT_KEYS", Reason::OctFollows)), "{planned:?}");
        assert!(planned.contains(&("JWT_JWKS", Reason::Rebuilt)), "{planned:?}");
        assert!(
            planned.contains(&("ANON_KEY_ASYMMETRIC", Reason::Missing)),
            "not re-minted for JWT_SECRET: {planned:?}"
        );
        let asked = plan(&complete(), &["JWT_KEYS"], false).unwrap();
        // Naming a missing key in --only reports it as missing: the more telling reason.
        assert!(asked.contains(&("JWT_KEYS", Reason::Missing)), "{asked:?}");
        assert!(asked.contains(&("SUPABASE_SECRET_KEY", Reason::Missing)), "{asked:?}");
    }

    #[test]
    fn placeholders_and_weak_values_are_filled_but_not_a_set_postgres_password() {
        let text = complete()
            .replace(&format!("REALTIME_DB_ENC_KEY={SET}"), "REALTIME_DB_ENC_KEY=your16charkey123")
            .replace(&format!("SECRET_KEY_BASE={SET}"), &format!("SECRET_KEY_BASE={}", "changeme".repeat(8)))
            .replace(&format!("POSTGRES_PASSWORD={SET}"), "POSTGRES_PASSWORD=postgres");
        assert_eq!(
            plan(&text, &[], false).unwrap(),
            [("SECRET_KEY_BASE", Reason::Weak), ("REALTIME_DB_ENC_KEY", Reason::Placeholder)]
        );
    }

    #[test]
    fn an_empty_asymmetric_key_does_not_bring_the_set_into_an_existing_file() {
        let planned = plan(&format!("{}JWT_KEYS=\nJWT_JWKS=\n", complete()), &[], false).unwrap();
        assert_eq!(planned, []);
    }

    #[test]
    fn env_output_has_every_catalog_key_once() {
        let minted = Minted::fresh(true).unwrap();
        let text = render(&minted, SecretsFormat::Env, "x", None).unwrap();
        for spec in keys::KEYS {
            let prefix = format!("\n{}=", spec.key);
            assert_eq!(text.matches(&prefix).count(), 1, "{}", spec.key);
        }
    }
}
