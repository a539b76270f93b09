//! The `tilgang` binary: the operator's toolbox. Thin: parse arguments, load
//! config, call core and store, print results.

mod cli;
mod commands;
mod config;
mod lifecycle;
mod services;
mod sharing;

use clap::Parser;
use std::process::ExitCode;

// The import allocates and frees millions of small strings; mimalloc does
// that markedly faster than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads hash passwords with per-thread Argon2 memory:
        // keep them, rather than fault 19 MiB in again for each new thread.
        .thread_keep_alive(std::time::Duration::from_secs(3600))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
