//! pmoves-secrets: mint, rotate and audit the secrets of a self-hosted Supabase stack.
//!
//! `main` only parses, dispatches and maps the outcome to an exit code (SPEC §5); every
//! behaviour lives in the library, where it can be tested as a function.

use clap::Parser as _;

use pmoves_secrets::cli::{Cli, Command};
use pmoves_secrets::error::{ExitCode, Result};
use pmoves_secrets::ui::{self, Ui};
use pmoves_secrets::{check, generate, manual, rotate, rotate_keys};

fn main() -> std::process::ExitCode {
    pmoves_secrets::process::forbid_core_dumps();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version arrive here as "errors" that belong on stdout with exit 0.
            let _ = err.print();
            return if err.use_stderr() { ExitCode::Usage } else { ExitCode::Success }.into();
        }
    };
    let ui = Ui::new(cli.verbosity());
    match run(cli.command, &ui) {
        Ok(code) => code.into(),
        Err(err) => {
            ui.failure(&err);
            err.exit_code().into()
        }
    }
}

/// Sends each command to its module: the outline of the program.
fn run(command: Command, ui: &Ui) -> Result<ExitCode> {
    match command {
        Command::GenerateKeys(args) => generate::run(&args.into(), ui).map(|()| ExitCode::Success),
        Command::RotatePasswords(args) => rotate::run(&args.into(), ui),
        Command::Check(args) => check::run(&args.into(), ui),
        Command::RotateKeys(args) => rotate_keys::run(&args.into(), ui),
        Command::Completions { shell } => {
            ui::write_stdout(&manual::completion_script(shell)).map(|()| ExitCode::Success)
        }
        Command::Man => ui::write_stdout(&manual::man_page()?).map(|()| ExitCode::Success),
    }
}

/// The C `log10`, served by the pure-Rust `libm` crate instead of the system's libm.so.
///
/// zxcvbn's scoring (via `f64::log10`) is the binary's only use of the C maths library, and
/// loading libm.so for that one function costs every run, `generate-keys` included, about a third
/// of a MiB of resident memory (its mapped pages) and the loader's work of binding it. With the
/// symbol defined here the linker resolves the call inside the binary and drops libm.so from
/// its needed libraries. Same contract as C's `log10` (IEEE double in, IEEE double out, NaN and
/// the infinities as C99 Annex F says); musl's algorithm, within an ulp of glibc's.
#[no_mangle]
pub extern "C" fn log10(x: f64) -> f64 {
    libm::log10(x)
}

#[cfg(test)]
mod tests {
    /// The shim keeps C's contract: exact powers of ten, the special values, and agreement with
    /// std (itself lowered to this symbol in the binary) to within an ulp or so.
    #[test]
    fn log10_keeps_cs_contract() {
        assert_eq!(super::log10(1.0), 0.0);
        assert_eq!(super::log10(1000.0), 3.0);
        assert_eq!(super::log10(1e20), 20.0);
        assert_eq!(super::log10(0.0), f64::NEG_INFINITY);
        assert_eq!(super::log10(f64::INFINITY), f64::INFINITY);
        assert!(super::log10(-1.0).is_nan() && super::log10(f64::NAN).is_nan());
        for x in [2.0_f64, 7.5, 123_456.789, 1.0e-300, 9.87e307] {
            let expected = x.ln() / std::f64::consts::LN_10;
            assert!((super::log10(x) - expected).abs() <= 1e-12 * expected.abs().max(1.0), "log10({x})");
        }
    }
}
