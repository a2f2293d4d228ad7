//! pmoves-secrets: mint, rotate and audit the secrets of a self-hosted Supabase stack.
//!
//! The library holds every behaviour; the binary (`src/main.rs`) only parses the command line,
//! dispatches and maps the outcome to an exit code. The layers, top to bottom; a module imports
//! only from layers below its own, never from its own layer (a unit test holds the code to this
//! list, which is also its table):
//!
//! - [`manual`]: the completion scripts and the man page, rendered from the clap definitions;
//! - [`cli`]: the top-level clap definitions and `rotate-keys`' phases (each command's own options
//!   derive clap's `Args` in the command's module, and the command takes them as parsed);
//! - the commands [`generate`], [`rotate`], [`rotate_keys`], [`rotate_secrets`] and [`check`],
//!   which never import each other;
//! - what several commands share: [`rotation`] (the options every rotation takes, the silenced
//!   session, `--restart`, crash points, settling a run by its transaction ids), [`analytics`]
//!   (Logflare's table of backends, which holds a copy of the password), [`service_copies`] (the
//!   copies of secrets Supavisor, Realtime and Logflare keep in the database, found and read),
//!   [`discovery`] (which of the stack's roles a live database lets log in), [`keyring`] (the
//!   states of the signing keys, which `rotate-keys` changes and `check` audits), [`compose_file`]
//!   (a compose file as compose reads it, and which services get the key sets) and [`strength`]
//!   (how guessable a secret's value is);
//! - [`stack`]: what a Supabase stack is (roles, keys and how each is made, services, settings),
//!   facts only;
//! - [`secrets`]: the only place secret values are made; [`db`]: a pure connector (resolution
//!   from plain values, connections, login checks; no file, no operator channel); [`ui`]: the
//!   operator channel;
//! - [`error`]: the one error type, whose variants know their exit code (it wraps
//!   `envfile`'s own error, hence above it);
//! - leaves that import nothing of the crate: [`secret`] (the redacting wrapper every value
//!   travels in), [`envfile`] (every `.env` file concern), [`dburl`] (the one connection-string
//!   grammar), [`jwt`] (reading tokens and keys), [`crypto`] (Supavisor's and Realtime's
//!   encryption of their copies), [`clock`] (UTC rendering), [`interrupt`] (Ctrl-C and SIGTERM
//!   during prompts and waits), [`limits`] (the time limits, which tests can shorten, and the duration options' grammar) and
//!   [`process`] (protections of the process itself: no core dump).

#![forbid(unsafe_code)]

pub mod analytics;
pub mod check;
pub mod cli;
pub mod clock;
pub mod compose_file;
pub mod crypto;
pub mod db;
pub mod dburl;
pub mod discovery;
pub mod envfile;
pub mod error;
pub mod generate;
pub mod interrupt;
pub mod jwt;
pub mod keyring;
pub mod limits;
pub mod manual;
pub mod process;
pub mod rotate;
pub mod rotate_keys;
pub mod rotate_secrets;
pub mod rotation;
pub mod secret;
pub mod secrets;
pub mod service_copies;
pub mod stack;
pub mod strength;
pub mod ui;

#[cfg(test)]
mod layers {
    //! Holds the real import graph to the layer list of the crate's doc above.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The modules of each layer of the doc's list, top first, read from the doc itself.
    fn documented_layers() -> Vec<BTreeSet<String>> {
        let lib = include_str!("lib.rs");
        let doc = lib.lines().take_while(|line| line.starts_with("//!"));
        let list = doc.skip_while(|line| !line.contains("The layers, top to bottom")).skip(1);
        let mut layers: Vec<String> = Vec::new();
        for line in list.skip_while(|line| !line.starts_with("//! - ")) {
            match line.strip_prefix("//! - ") {
                Some(item) => layers.push(item.to_owned()),
                None if line.starts_with("//!   ") => layers.last_mut().expect("a list item").push_str(line),
                None => break,
            }
        }
        layers
            .iter()
            .map(|item| {
                item.split("[`").skip(1).filter_map(|rest| rest.split_once("`]")).map(|(m, _)| m.to_owned()).collect()
            })
            .collect()
    }

    /// The crate's top-level modules each module's code names (`crate::x`, `crate::{x, y}`),
    /// comments left out; a file `src/a/b.rs` belongs to module `a`.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&src).unwrap().to_str().unwrap().to_owned();
                if relative == "lib.rs" || relative == "main.rs" || !relative.ends_with(".rs") {
                    continue;
                }
                let module = relative.split(['/', '.']).next().unwrap().to_owned();
                let code: String = std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .map(|line| line.split("//").next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n");
                let used = graph.entry(module.clone()).or_default();
                for rest in code.split("crate::").skip(1) {
                    let names = match rest.strip_prefix('{') {
                        Some(group) => group.split('}').next().unwrap_or(""),
                        None => rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or(""),
                    };
                    for name in names
                        .split(',')
                        .map(|n| n.trim().split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or(""))
                    {
                        if !name.is_empty() && name != module {
                            used.insert(name.to_owned());
                        }
                    }
                }
            }
        }
        graph
    }

    #[test]
    fn every_module_imports_only_from_layers_below_its_own() {
        let layers = documented_layers();
        assert!(layers.len() >= 5, "the layer list of the crate doc was not found: {layers:?}");
        let rank = |module: &str| layers.iter().position(|layer| layer.contains(module));
        let graph = imports();
        let mut wrong = Vec::new();
        for (module, used) in &graph {
            let Some(own) = rank(module) else {
                wrong.push(format!("{module} is in no layer of the crate doc"));
                continue;
            };
            for name in used {
                match rank(name) {
                    Some(theirs) if theirs > own => {}
                    Some(_) => wrong.push(format!("{module} imports {name}, which is not below it")),
                    None => wrong.push(format!("{module} imports {name}, which is in no layer")),
                }
            }
        }
        for layer in &layers {
            for module in layer {
                assert!(graph.contains_key(module), "the crate doc lists {module}, which is no module");
            }
        }
        assert!(wrong.is_empty(), "the import graph breaks the layers of the crate doc:\n{}", wrong.join("\n"));
    }
}
