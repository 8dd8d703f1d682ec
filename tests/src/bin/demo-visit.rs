//! `demo-visit OUT.wav`: speaks the demo's two-voice visit ([`tests::VISIT`]) into a WAV with
//! espeak-ng and sox. `cargo xtask demo` runs it once the packages are installed and the workspace
//! is built: xtask itself links nothing that needs a system package.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: demo-visit OUT.wav");
        return ExitCode::from(2);
    };
    match tests::synthesize(tests::VISIT, &out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-visit: {e}");
            ExitCode::FAILURE
        }
    }
}
