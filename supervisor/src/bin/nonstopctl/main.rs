//! nonstopctl: the command-line client of nonstopd's D-Bus API
//! (`org.nonstop.Supervisor1`, docs/dbus.md). It uses nothing but that
//! public API, like busctl or any other client would: status, manual
//! switching, mode, restarts, drills, live events, reload and the fleet.
//!
//! Exit codes and message shapes are an interface for scripts; they are
//! listed in `help::HELP` (`nonstopctl --help`).
//!
//! One job per module: `cli` reads the command line (`help` is its text),
//! `proxies` are the API, `client` runs the commands (`watch` the live
//! one), `fail` maps failures to exit codes, `json` and `text` print.

mod cli;
#[cfg(test)]
#[path = "../../cli_files.rs"]
mod cli_files;
mod client;
mod fail;
mod help;
mod json;
mod proxies;
mod text;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use zbus::proxy::CacheProperties;

use cli::{parse, Command, Invocation, Parsed};
use client::Client;
use fail::{bounded, Fail};
use help::{HELP, USAGE};
use text::out;

/// Exit codes (see `HELP`).
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;
const EXIT_REFUSED: u8 = 4;

/// A call that is not a drill gets this long (nonstopd answers every
/// command within 10 s or replies `Busy`).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A drill gets its duration plus this (nonstopd gives it 2 min of slack).
const DRILL_SLACK: Duration = Duration::from_secs(150);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn run(inv: Invocation) -> Result<(), Fail> {
    let client = Client::connect(inv.bus.clone()).await?;
    let bus = client.bus.clone();
    match inv.command {
        Command::Status(ch) => client.status(ch, inv.json).await,
        Command::Switch(ch, input) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.switch_to(&input)).await
        }
        Command::Mode(ch, mode) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.set_mode(&mode)).await
        }
        Command::RestartInput(ch, id) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.restart_input(&id)).await
        }
        Command::RestartOutput(ch, id) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.restart_output(&id)).await
        }
        Command::Start(ch) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.start()).await
        }
        Command::Stop(ch) => {
            let c = client.channel(&ch).await?;
            bounded(&bus, CALL_TIMEOUT, c.stop()).await
        }
        Command::Drill {
            channel,
            kind,
            target,
            duration,
        } => {
            client
                .drill(&channel, &kind, &target, duration, inv.json)
                .await
        }
        Command::Cue {
            channel,
            kind,
            duration,
            when,
        } => {
            let c = client.channel(&channel).await?;
            let ms = duration.as_millis() as u64;
            let id = match when {
                cli::CueWhen::Preroll(p) => {
                    bounded(
                        &bus,
                        CALL_TIMEOUT,
                        c.insert_cue(&kind, ms, p.as_millis() as u64),
                    )
                    .await?
                }
                cli::CueWhen::Utc(t) => {
                    bounded(&bus, CALL_TIMEOUT, c.schedule_cue(&kind, ms, &t)).await?
                }
            };
            out(&if inv.json {
                format!("{{\"id\": {id}}}\n")
            } else {
                format!("{id}\n")
            });
            Ok(())
        }
        Command::Watch(ch) => client.watch(ch, inv.json).await,
        Command::Reload => {
            let m = client.manager(CacheProperties::No).await?;
            // A reload may rebuild channels: give it the drill's slack.
            bounded(&bus, DRILL_SLACK, m.reload()).await
        }
        Command::FleetStatus => client.fleet_status(inv.json).await,
        Command::Drain(node) => {
            let m = client.manager(CacheProperties::No).await?;
            bounded(&bus, CALL_TIMEOUT, m.drain(&node)).await
        }
        Command::Undrain(node) => {
            let m = client.manager(CacheProperties::No).await?;
            bounded(&bus, CALL_TIMEOUT, m.undrain(&node)).await
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inv = match parse(&args) {
        Ok(Parsed::Help) => {
            out(&format!("{HELP}\n"));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            out(&format!("nonstopctl {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(inv)) => inv,
        Err(msg) => {
            eprintln!("nonstopctl: {msg}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nonstopctl: cannot start the event loop: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match rt.block_on(run(inv)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("nonstopctl: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

#[cfg(test)]
#[test]
fn cli_files_are_current() {
    cli_files::check(cli::command());
}
